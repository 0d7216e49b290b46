// The library's version.
#pragma once

#define SSMRL_VERSION_MAJOR 0
#define SSMRL_VERSION_MINOR 1
#define SSMRL_VERSION_PATCH 0

namespace ssmrl {
inline constexpr int version_major = SSMRL_VERSION_MAJOR;
inline constexpr int version_minor = SSMRL_VERSION_MINOR;
inline constexpr int version_patch = SSMRL_VERSION_PATCH;
}  // namespace ssmrl

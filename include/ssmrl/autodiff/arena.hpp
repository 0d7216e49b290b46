// A bump allocator whose blocks outlive clear(): a loop with fixed shapes allocates only once.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <vector>

namespace ssmrl::ad {

class Arena {
public:
  static constexpr std::size_t alignment = 64;

  //! A position in the arena; rewind(mark) frees everything allocated after it.
  struct Mark {
    std::size_t block = 0;
    std::size_t offset = 0;
  };

  explicit Arena(std::size_t first_block_bytes = std::size_t{1} << 16)
      : first_block_bytes_(first_block_bytes < alignment ? alignment : first_block_bytes) {}

  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  Arena(Arena&&) noexcept = default;
  Arena& operator=(Arena&&) noexcept = default;

  //! Returns `bytes` of storage aligned to `alignment`; valid until clear() or a rewind past it.
  [[nodiscard]] void* allocate(std::size_t bytes) {
    bytes = round_up(bytes == 0 ? 1 : bytes);
    if (block_ < blocks_.size() && offset_ + bytes <= blocks_[block_].size) {
      void* out = blocks_[block_].data.get() + offset_;
      offset_ += bytes;
      return out;
    }
    return allocate_slow(bytes);
  }

  [[nodiscard]] Mark mark() const noexcept { return {block_, offset_}; }
  void rewind(Mark m) noexcept {
    block_ = m.block;
    offset_ = m.offset;
  }
  //! Frees everything at once and keeps the blocks for the next round.
  void clear() noexcept { rewind({}); }

  [[nodiscard]] std::size_t bytes_reserved() const noexcept {
    std::size_t total = 0;
    for (const auto& b : blocks_) total += b.size;
    return total;
  }
  [[nodiscard]] std::size_t block_count() const noexcept { return blocks_.size(); }

private:
  struct AlignedDelete {
    void operator()(std::byte* p) const noexcept { ::operator delete[](p, std::align_val_t{alignment}); }
  };
  struct Block {
    std::unique_ptr<std::byte[], AlignedDelete> data;
    std::size_t size = 0;
  };

  static constexpr std::size_t round_up(std::size_t n) noexcept {
    return (n + alignment - 1) / alignment * alignment;
  }

  void* allocate_slow(std::size_t bytes) {
    // Move to the next kept block; insert a fresh one where it is missing or too small, so that
    // the same sequence of requests finds every block in place next time round.
    const std::size_t next = blocks_.empty() ? 0 : block_ + 1;
    if (next >= blocks_.size() || blocks_[next].size < bytes) {
      std::size_t size = blocks_.empty() ? first_block_bytes_ : blocks_.back().size * 2;
      while (size < bytes) size *= 2;
      Block fresh{std::unique_ptr<std::byte[], AlignedDelete>(
                      new (std::align_val_t{alignment}) std::byte[size]),
                  size};
      blocks_.insert(blocks_.begin() + static_cast<std::ptrdiff_t>(next), std::move(fresh));
    }
    block_ = next;
    offset_ = bytes;
    return blocks_[block_].data.get();
  }

  std::vector<Block> blocks_;
  std::size_t block_ = 0;
  std::size_t offset_ = 0;
  std::size_t first_block_bytes_;
};

}  // namespace ssmrl::ad

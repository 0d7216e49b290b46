// Every input kept for the fuzz targets (the seed corpora, the shipped checkpoints and each input
// that ever crashed a reader) runs through its target here, with any compiler: a crash, a sanitizer
// report or an exception other than ssmrl::InvalidArgument fails this test.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz/targets.hpp"

using namespace ssmrl;
namespace fs = std::filesystem;

namespace {

const fs::path fuzz_dir = SSMRL_FUZZ_DIR;
const fs::path pretrained_dir = SSMRL_PRETRAINED_DIR;

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename().string().front() != '.') out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string bytes_of(const fs::path& p) { return io::read_file("regression_test", p); }

int run(int (*target)(const std::uint8_t*, std::size_t), const std::string& bytes) {
  return target(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

// The seed of the experience-buffer target: a checkpoint of the small policy with a full buffer.
std::string buffer_seed() {
  auto pi = fuzz::small_policy();
  adapt::ExperienceBuffer<float> buffer(4, 1, fuzz::small_state_size, fuzz::small_buffer_options());
  rl::TrajectoryBatch<float> t = rl::sized_trajectory_batch<float>(4, 1, 2, 9);
  t.observations.setRandom();
  t.actions.setZero();
  t.rewards.setOnes();
  t.terminated.setZero();
  t.truncated.setZero();
  t.log_probs.setConstant(-0.5f);
  t.keep.setOnes();
  t.initial_state.setRandom(fuzz::small_state_size, 2);
  buffer.add(t);
  auto file = io::checkpoint_file(pi);
  buffer.write_into(file);
  return io::encode_safetensors(file);
}

}  // namespace

TEST_CASE("every kept input of every fuzz target runs through it") {
  std::size_t total = 0;
  for (const auto& target : fuzz::targets()) {
    std::vector<fs::path> inputs = files_in(fuzz_dir / "corpus" / target.name);
    for (const auto& p : files_in(fuzz_dir / "regressions" / target.name)) inputs.push_back(p);
    if (std::string(target.name) == "safetensors" || std::string(target.name) == "checkpoint") {
      for (const auto& p : files_in(pretrained_dir)) {
        if (p.extension() == ".safetensors") inputs.push_back(p);
      }
    }
    CAPTURE(target.name);
    CHECK(inputs.size() >= 2);
    for (const auto& p : inputs) {
      CAPTURE(p.string());
      CHECK(run(target.run, bytes_of(p)) == 0);
    }
    total += inputs.size();
  }
  MESSAGE(total << " inputs");
}

TEST_CASE("each kept hostile .npz is refused with a message naming the reader and the archive") {
  const auto kept = files_in(fuzz_dir / "regressions" / "npz");
  CHECK(kept.size() >= 5);
  for (const auto& p : kept) {
    CAPTURE(p.string());
    try {
      (void)io::decode_npz(bytes_of(p), p.filename().string());
      FAIL("accepted");
    } catch (const InvalidArgument& e) {
      const std::string what = e.what();
      CHECK(what.find("io::read_npz") != std::string::npos);
      CHECK(what.find(p.filename().string()) != std::string::npos);
    }
  }
}

TEST_CASE("the seeds are inputs the readers accept, so that fuzzing starts from valid files") {
  // The shipped navigation2d checkpoint loads into the checkpoint target's policy.
  auto policy = fuzz::navigation_policy();
  io::load_checkpoint(pretrained_dir / "navigation2d.safetensors", policy);
  // The buffer seed in the corpus is the one this test makes, and it reads back whole.
  const auto seed = buffer_seed();
  if (const char* out = std::getenv("SSMRL_WRITE_FUZZ_SEEDS")) {
    io::write_file_atomically("regression_test", fs::path(out) / "buffer_checkpoint.safetensors", seed);
  }
  const auto kept = fuzz_dir / "corpus" / "experience_buffer" / "buffer_checkpoint.safetensors";
  REQUIRE(fs::exists(kept));
  const auto file = io::decode_safetensors(bytes_of(kept));
  adapt::ExperienceBuffer<float> buffer(4, 1, fuzz::small_state_size, fuzz::small_buffer_options());
  buffer.read_from(file, kept.string());
  CHECK(buffer.size() == 4);
  auto pi = fuzz::small_policy();
  io::load_checkpoint(file, kept.string(), pi, {.other_prefixes = {"experience"}});
  // CSV seeds parse with the columns of their own header.
  for (const auto& p : files_in(fuzz_dir / "corpus" / "csv")) {
    const auto text = bytes_of(p);
    if (p.filename().string().rfind("valid-", 0) != 0) continue;
    std::vector<std::string> columns;
    const auto header = text.substr(0, text.find('\n'));
    std::size_t at = 0;
    for (auto comma = header.find(','); ; comma = header.find(',', at)) {
      columns.push_back(header.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
    CAPTURE(p.string());
    CHECK_FALSE(io::CsvTable::parse(text, p.string(), columns).rows().empty());
  }
}

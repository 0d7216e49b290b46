// Checkpoints: round trips, every kind of bad file (with the model left unchanged), and files that
// Python reads and writes (numpy for .npz; struct and json for safetensors).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <ssmrl/ssmrl.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/errors.hpp"

using namespace ssmrl;
namespace fs = std::filesystem;

namespace {

using Policy = policy::RecurrentPolicy<nn::DiagSsmCell<double>, policy::GaussianHead<double>, nn::LayerNorm<double>,
                                       policy::ValueHead<double>>;

Policy make_policy(std::uint64_t seed, ad::Index hidden = 6) {
  return Policy(nn::DiagSsmCell<double>({.input = 3, .state = 5, .output = hidden}),
                policy::GaussianHead<double>({.input = hidden, .actions = 2}), nn::LayerNorm<double>(hidden),
                policy::ValueHead<double>(hidden), seed);
}

fs::path scratch_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("ssmrl_checkpoint_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string slurp(const fs::path& p) { return io::read_file("test", p); }
void spit(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// Expects load_checkpoint to throw with `fragment` in the message and to leave the policy as it was.
void expect_rejected(const fs::path& file, Policy& policy, const std::string& fragment, io::LoadOptions options = {}) {
  const auto before = nn::flatten<double>(policy.params());
  try {
    io::load_checkpoint(file, policy, options);
    FAIL("accepted " << file.filename().string());
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.find(fragment) != std::string::npos);
    CHECK(std::string(e.what()).find("io::") == 0);
  }
  CHECK(nn::flatten<double>(policy.params()) == before);
}

}  // namespace

TEST_CASE("a checkpoint round-trips exactly, with its description in the metadata") {
  const auto dir = scratch_dir("roundtrip");
  const auto saved = make_policy(1);
  io::save_checkpoint(dir / "p.safetensors", saved, {{"step", "42"}});
  auto loaded = make_policy(2);
  CHECK(nn::flatten<double>(loaded.params()) != nn::flatten<double>(saved.params()));
  const auto metadata = io::load_checkpoint(dir / "p.safetensors", loaded);
  CHECK(nn::flatten<double>(loaded.params()) == nn::flatten<double>(saved.params()));
  CHECK(metadata.at("step") == "42");
  CHECK(metadata.at("format") == io::checkpoint_format);
  const auto model = nlohmann::json::parse(metadata.at("model"));
  CHECK(model["cell"]["type"] == "DiagSsmCell");
  CHECK(model["head"]["actions"] == 2);
  // No temporary file is left behind.
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++files;
  CHECK(files == 1);
}

TEST_CASE("bad checkpoints are rejected with a clear error and change nothing") {
  const auto dir = scratch_dir("bad");
  const auto good = dir / "good.safetensors";
  io::save_checkpoint(good, make_policy(3));
  const auto bytes = slurp(good);
  auto policy = make_policy(4);

  spit(dir / "truncated.safetensors", bytes.substr(0, bytes.size() / 2));
  expect_rejected(dir / "truncated.safetensors", policy, "truncated");
  spit(dir / "tiny.safetensors", bytes.substr(0, 5));
  expect_rejected(dir / "tiny.safetensors", policy, "too short");
  std::string corrupt = bytes;
  corrupt[8] = '#';  // the header's opening brace
  spit(dir / "corrupt.safetensors", corrupt);
  expect_rejected(dir / "corrupt.safetensors", policy, "not valid JSON");
  expect_rejected(dir / "missing.safetensors", policy, "cannot open");

  // A different model: caught by its description, or by the shapes when descriptions are not checked.
  io::save_checkpoint(dir / "wider.safetensors", make_policy(5, 7));
  expect_rejected(dir / "wider.safetensors", policy, "holds a different model");
  expect_rejected(dir / "wider.safetensors", policy, "has shape [7, 5], the model's is [6, 5]", {.check_model = false});

  // Edited tensor lists.
  auto file = io::read_safetensors(good);
  file.metadata.erase("model");
  auto without = file;
  without.tensors.erase(without.tensors.begin() + 3);
  io::write_safetensors(dir / "without.safetensors", without);
  expect_rejected(dir / "without.safetensors", policy, "has no tensor cell.C");
  auto extra = file;
  extra.tensors.push_back(io::to_tensor<double>("cell.E", ad::Matrix<double>::Ones(2, 2)));
  io::write_safetensors(dir / "extra.safetensors", extra);
  expect_rejected(dir / "extra.safetensors", policy, "has tensor cell.E, which the model lacks");
  auto single = file;
  single.tensors[0] = io::to_tensor<float>(single.tensors[0].name, ad::Matrix<float>::Ones(5, 1));
  io::write_safetensors(dir / "float.safetensors", single);
  expect_rejected(dir / "float.safetensors", policy, "is F32, the model is F64");
}

TEST_CASE("python reads the checkpoint and the npz export, and writes a checkpoint that loads") {
  const auto dir = scratch_dir("python");
  const auto policy = make_policy(6);
  io::save_checkpoint(dir / "policy.safetensors", policy);
  io::export_npz(dir / "policy.npz", policy);
  nlohmann::ordered_json expected;
  nn::for_each_parameter(policy.params(), [&](std::string_view name, const ad::Matrix<double>& m) {
    const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = m;
    expected[std::string(name)] = {
        {"shape", m.cols() == 1 ? std::vector<ad::Index>{m.rows()} : std::vector<ad::Index>{m.rows(), m.cols()}},
        {"values", std::vector<double>(row_major.data(), row_major.data() + row_major.size())}};
  });
  std::ofstream(dir / "expected.json") << std::setprecision(17) << expected.dump();
  const std::string command = std::string(SSMRL_PYTHON) + " " + SSMRL_INTEROP_SCRIPT + " " + dir.string();
  INFO(command);
  REQUIRE(std::system(command.c_str()) == 0);

  auto loaded = make_policy(7);
  io::load_checkpoint(dir / "from_python.safetensors", loaded);
  const Eigen::VectorXd want = nn::flatten<double>(policy.params()).array() * 2.0 + 1.0;
  CHECK(nn::flatten<double>(loaded.params()) == want);
}

TEST_CASE("a CSV table round-trips exactly and rejects a file with other columns") {
  const auto dir = scratch_dir("csv");
  io::CsvTable table({"iteration", "return"});
  table.add_row({0, -41.399999999999999});
  table.add_row({1, 1.0 / 3.0});
  table.write(dir / "log.csv");
  const auto back = io::CsvTable::read(dir / "log.csv", {"iteration", "return"});
  CHECK(back.rows() == table.rows());
  const auto wrong = test::message_of<InvalidArgument>([&] { (void)io::CsvTable::read(dir / "log.csv", {"iteration", "loss"}); });
  CHECK(wrong.find("has columns 'iteration,return', expected 'iteration,loss'") != std::string::npos);
  CHECK(test::message_of<InvalidArgument>([&] { table.add_row({1}); }).find("1 values for 2 columns") != std::string::npos);
  const auto header_only = io::CsvTable({"a"});
  header_only.write(dir / "empty.csv");
  CHECK(io::CsvTable::read(dir / "empty.csv", {"a"}).rows().empty());
}

TEST_CASE("an SVG plot holds one polyline per series, with escaped labels") {
  const auto svg = io::svg_text({"returns <train>", "x", "y", {{"a", {0, 1, 2}, {1, 3, 2}}, {"b", {0, 2}, {0, 1}}}});
  std::size_t count = 0;
  for (auto at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++count;
  CHECK(count == 2);
  CHECK(svg.find("returns &lt;train&gt;") != std::string::npos);
  CHECK(test::message_of<InvalidArgument>([] { (void)io::svg_text({"t", "x", "y", {{"a", {0, 1}, {1}}}}); })
            .find("series 'a' has 2 x and 1 y values") != std::string::npos);
}

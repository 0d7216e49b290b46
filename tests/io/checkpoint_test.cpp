// Checkpoints: round trips, every kind of bad file (with the model left unchanged), and files that
// Python reads and writes (numpy for .npz; struct and json for safetensors).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <ssmrl/ssmrl.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
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

namespace {

// A safetensors file from a JSON header and a data section, as a hostile writer would make it.
std::string raw_safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const std::uint64_t length = header.size();
  std::memcpy(out.data(), &length, 8);
  return out + header + data;
}

std::string decode_error(const std::string& bytes) {
  return test::message_of<InvalidArgument>([&] { (void)io::decode_safetensors(bytes, "hostile"); });
}

}  // namespace

TEST_CASE("a tensor in memory whose bytes disagree with its shape is refused at load, changing nothing") {
  using FloatPolicy = policy::RecurrentPolicy<nn::MlpCell<float>, policy::CategoricalHead<float>>;
  FloatPolicy policy(nn::MlpCell<float>({.input = 2, .hidden = {2}}), policy::CategoricalHead<float>(2, 2), {}, {}, 1);
  auto file = io::checkpoint_file(policy);
  const auto before = nn::flatten<float>(policy.params());
  // The first 2x2 weight, carrying 4096 bytes instead of 16.
  auto it = std::find_if(file.tensors.begin(), file.tensors.end(), [](const io::Tensor& t) { return t.shape.size() == 2; });
  REQUIRE(it != file.tensors.end());
  REQUIRE(it->shape == std::vector<std::int64_t>{2, 2});
  const auto name = it->name;
  it->bytes.assign(4096, '\x7f');
  const auto message = test::message_of<InvalidArgument>([&] { (void)io::load_checkpoint(file, "memory", policy); });
  CHECK(message == "io::load_checkpoint: 'memory': tensor " + name + " has shape [2, 2] but carries 4096 bytes, not "
                   "the 16 that shape needs");
  CHECK(nn::flatten<float>(policy.params()) == before);
  it->bytes.assign(3, '\0');
  CHECK(test::message_of<InvalidArgument>([&] { (void)io::load_checkpoint(file, "memory", policy); })
            .find("carries 3 bytes, not the 16") != std::string::npos);
  // to_matrix itself refuses too.
  CHECK(test::message_of<InvalidArgument>([&] { (void)io::to_matrix<float>(*it, 2, 2); })
            .find("io::to_matrix: tensor '" + name + "' holds 3 bytes of F32; a 2 x 2 matrix of F32 needs 16") == 0);
  // And the encoder will not write such a tensor.
  CHECK(test::message_of<InvalidArgument>([&] { (void)io::encode_safetensors(file); }).find("has 3 bytes for 4 elements") !=
        std::string::npos);
}

TEST_CASE("a checkpoint holding NaN or infinite weights is refused unless asked for") {
  const auto dir = scratch_dir("nonfinite");
  auto broken = make_policy(8);
  auto params = broken.params();
  bool first = true;
  nn::for_each_parameter(params, [&](std::string_view, ad::Matrix<double>& m) {
    if (first) m(0, 0) = std::numeric_limits<double>::infinity();
    first = false;
  });
  broken.set_params(params);
  io::save_checkpoint(dir / "inf.safetensors", broken);
  auto policy = make_policy(9);
  expect_rejected(dir / "inf.safetensors", policy, "holds NaN or infinite values");
  io::load_checkpoint(dir / "inf.safetensors", policy, {.require_finite = false});
  CHECK_FALSE(nn::flatten<double>(policy.params()).allFinite());
}

TEST_CASE("hostile safetensors headers: overflowing shapes, offsets outside the data, overlaps and gaps") {
  // [2^62] F32 with empty offsets: 2^64 bytes, which wraps to 0 in 64-bit arithmetic.
  CHECK(decode_error(raw_safetensors(R"({"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", ""))
            .find("more elements than the 0-byte data section holds") != std::string::npos);
  // [2^32, 2^32]: the product overflows a signed 64-bit integer.
  CHECK(decode_error(raw_safetensors(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                                     std::string(8, '\0')))
            .find("more elements than the 8-byte data section holds") != std::string::npos);
  CHECK(decode_error(raw_safetensors(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, '\0')))
            .find("has dimension -1; dimensions are integers of at least 0") != std::string::npos);
  CHECK(decode_error(raw_safetensors(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", std::string(4, '\0')))
            .find("has dimension 1.5") != std::string::npos);
  CHECK(decode_error(raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", std::string(4, '\0')))
            .find("has 4 bytes for shape [2] of F32 (2 elements)") != std::string::npos);
  CHECK(decode_error(raw_safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(4, '\0')))
            .find("spans bytes [4, 8) of a 4-byte data section") != std::string::npos);
  CHECK(decode_error(raw_safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", std::string(8, '\0')))
            .find("spans bytes [8, 4)") != std::string::npos);
  const auto two = std::string(8, '\0');
  CHECK(decode_error(raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", two))
            .find("starts at byte 4 of the data section, not at 8 where the one before it ends (overlapping)") !=
        std::string::npos);
  CHECK(decode_error(raw_safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", two))
            .find("starts at byte 4 of the data section, not at 0 where the one before it ends (a gap)") !=
        std::string::npos);
  CHECK(decode_error(raw_safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", two))
            .find("the tensors cover 4 bytes of a 8-byte data section") != std::string::npos);
  std::string huge(8, '\0');
  const std::uint64_t length = 200'000'000;
  std::memcpy(huge.data(), &length, 8);
  CHECK(decode_error(huge + "{}").find("more than the format's limit") != std::string::npos);
  CHECK(decode_error(raw_safetensors(R"({"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')))
            .find("has dtype I32; F32 and F64 are supported") != std::string::npos);
  CHECK(decode_error(raw_safetensors(R"({"__metadata__":{"k":1}})", "")).find("metadata 'k' is not a string") !=
        std::string::npos);
  CHECK(decode_error(raw_safetensors("[1,2]", "")).find("not a JSON object") != std::string::npos);
  // Tensors in Tensor objects are checked as well: element_count() no longer overflows.
  io::Tensor t{"x", io::DType::f64, {std::int64_t(1) << 32, std::int64_t(1) << 32}, {}};
  CHECK(test::message_of<InvalidArgument>([&] { (void)t.element_count(); }).find("more than 2^62 elements") !=
        std::string::npos);
  // A well-formed file with zero-sized tensors still decodes.
  const auto ok = io::decode_safetensors(raw_safetensors(
      R"({"e":{"dtype":"F64","shape":[0,3],"data_offsets":[0,0]},"f":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
      std::string(4, '\0')));
  CHECK(ok.tensors.size() == 2);
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
  const std::string command =
      std::string(SSMRL_PYTHON) + " " + SSMRL_INTEROP_SCRIPT + " " + dir.string() + " " + SSMRL_SCRIPTS_DIR;
  INFO(command);
  REQUIRE(std::system(command.c_str()) == 0);

  auto loaded = make_policy(7);
  io::load_checkpoint(dir / "from_python.safetensors", loaded);
  const Eigen::VectorXd want = nn::flatten<double>(policy.params()).array() * 2.0 + 1.0;
  CHECK(nn::flatten<double>(loaded.params()) == want);

  // numpy.savez's archive, read by name: float32 widens exactly, Fortran order becomes row-major.
  const auto npz = io::NamedTensors::read(dir / "from_numpy.npz");
  CHECK(npz.matrix<double>("bias") == Eigen::Vector3d(0.0, 0.5, 1.0));
  CHECK(npz.matrix<float>("bias") == Eigen::Vector3f(0.0f, 0.5f, 1.0f));
  Eigen::Matrix<double, 2, 3> weight;
  weight << 0, 1, 2, 3, 4, 5;
  CHECK(npz.matrix<double>("weight", 2, 3) == ad::Matrix<double>(weight / 7));
  CHECK(npz.at("cube").shape == std::vector<std::int64_t>{2, 2, 2});
  CHECK(test::message_of<InvalidArgument>([&] { (void)npz.matrix<double>("cube"); }).find("has shape [2, 2, 2]") !=
        std::string::npos);
  CHECK(test::message_of<InvalidArgument>([&] { (void)npz.matrix<float>("weight"); }).find("does not narrow") !=
        std::string::npos);
  CHECK(test::message_of<InvalidArgument>([&] { (void)npz.at("wieght"); }).find("has no tensor wieght; it has: ") !=
        std::string::npos);

  // The installed script's state_dict file imports into a GRU cell and a linear layer by torch's names.
  const auto state = io::NamedTensors::read(dir / "state_dict.safetensors");
  nn::GruCell<double> cell({.input = 3, .hidden = 2});
  nn::init::Rng rng(1);
  auto rnn = cell.init_params(rng);
  io::import_torch_rnn(state, "rnn", rnn);
  nn::LinearParams<ad::Matrix<double>> head{ad::Matrix<double>::Zero(2, 2), ad::Matrix<double>::Zero(2, 1)};
  io::import_torch_linear(state, "head", head);
  auto expected_of = [](ad::Index rows, ad::Index cols, int position) {
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> m(rows, cols);
    for (ad::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<double>(i) / 10 + position;
    return ad::Matrix<double>(m);
  };
  CHECK(rnn.weight_ih == expected_of(6, 3, 0));
  CHECK(rnn.weight_hh == expected_of(6, 2, 1));
  CHECK(rnn.bias_ih == expected_of(6, 1, 2));
  CHECK(rnn.bias_hh == expected_of(6, 1, 3));
  CHECK(head.W == expected_of(2, 2, 4));
  CHECK(head.b == expected_of(2, 1, 5));
  // A wrong size or prefix changes nothing and says what it found.
  nn::GruCell<double> wider({.input = 3, .hidden = 3});
  auto wide = wider.init_params(rng);
  const auto before = wide.weight_ih;
  CHECK(test::message_of<InvalidArgument>([&] { io::import_torch_rnn(state, "rnn", wide); })
            .find("tensor rnn.weight_ih has shape [6, 3], expected [9, 3]") != std::string::npos);
  CHECK(wide.weight_ih == before);
  CHECK(test::message_of<InvalidArgument>([&] { io::import_torch_rnn(state, "cell", rnn); })
            .find("has no tensor cell.weight_ih; it has: rnn.weight_ih, ") != std::string::npos);
}

TEST_CASE("the .npz reader reads what export_npz writes and refuses damaged archives, naming the entry") {
  const auto dir = scratch_dir("npz");
  const auto policy = make_policy(8);
  io::export_npz(dir / "policy.npz", policy);
  const auto file = io::NamedTensors::read(dir / "policy.npz");
  nn::for_each_parameter(policy.params(), [&](std::string_view name, const ad::Matrix<double>& m) {
    CHECK(file.matrix<double>(name, m.rows(), m.cols()) == m);
  });
  CHECK(file.names().size() == nn::to_list<ad::Matrix<double>>(policy.params()).size());
  const auto bytes = slurp(dir / "policy.npz");
  auto refused = [](const std::string& damaged, const std::string& fragment) {
    const auto message = test::message_of<InvalidArgument>([&] { (void)io::decode_npz(damaged, "damaged.npz"); });
    INFO(message);
    CHECK(message.find(fragment) != std::string::npos);
  };
  auto flipped = bytes;
  flipped[200] = static_cast<char>(flipped[200] ^ 0x40);  // inside the first entry's data
  refused(flipped, "fails its CRC-32 check");
  refused(bytes.substr(0, bytes.size() - 30), "not a zip archive");
  refused(bytes.substr(0, 10), "too short for a zip archive");
  auto compressed = bytes;
  const auto central = compressed.find("PK\x01\x02");
  REQUIRE(central != std::string::npos);
  compressed[central + 10] = 8;  // deflate
  refused(compressed, "is compressed (method 8); save with numpy.savez");
}

namespace {

// A torch_state_dicts file imported into a cell of its kind and scalar, reproducing data.h and data.y
// through the inference step and through the training path on a tape.
template <class Scalar, class Cell>
void check_torch_file(const io::NamedTensors& file, double tolerance) {
  const auto weight_hh = file.matrix<Scalar>("rnn.weight_hh");
  const ad::Index hidden = weight_hh.cols();
  const ad::Index input = file.matrix<Scalar>("rnn.weight_ih").cols();
  const ad::Index outputs = file.matrix<Scalar>("head.weight").rows();
  Cell cell({.input = input, .hidden = hidden});
  nn::init::Rng rng(1);
  auto params = cell.init_params(rng);
  io::import_torch_rnn(file, "rnn", params);
  nn::LinearParams<ad::Matrix<Scalar>> head{ad::Matrix<Scalar>::Zero(outputs, hidden), ad::Matrix<Scalar>::Zero(outputs, 1)};
  io::import_torch_linear(file, "head", head);
  // The files are (steps*batch, features), row t*batch+b: transposed, the library's time-major columns.
  const ad::Matrix<Scalar> x = file.matrix<Scalar>("data.x").transpose();
  const ad::Matrix<Scalar> h0 = file.matrix<Scalar>("data.h0").transpose();
  const ad::Matrix<Scalar> c0 = file.matrix<Scalar>("data.c0").transpose();
  const ad::Matrix<Scalar> want_h = file.matrix<Scalar>("data.h").transpose();
  const ad::Matrix<Scalar> want_y = file.matrix<Scalar>("data.y").transpose();
  const ad::Index batch = h0.cols();
  REQUIRE(x.cols() % batch == 0);
  ad::Matrix<Scalar> initial(cell.state_size(), batch);
  initial.topRows(hidden) = h0;
  if (cell.state_size() == 2 * hidden) initial.bottomRows(hidden) = c0;  // the LSTM's state is [h; c]
  auto relative = [](const ad::Matrix<Scalar>& got, const ad::Matrix<Scalar>& want) {
    return static_cast<double>((got - want).cwiseAbs().maxCoeff() / want.cwiseAbs().maxCoeff());
  };
  // Inference, one step at a time.
  ad::Matrix<Scalar> state = initial;
  auto ws = cell.make_workspace(batch);
  ad::Matrix<Scalar> h(hidden, x.cols());
  ad::Matrix<Scalar> out(hidden, batch);
  for (ad::Index t = 0; t < x.cols() / batch; ++t) {
    cell.step(params, state, x.middleCols(t * batch, batch), out, ws);
    h.middleCols(t * batch, batch) = out;
  }
  ad::Matrix<Scalar> y(outputs, h.cols());
  nn::linear_into(head, h, y);
  CHECK(relative(h, want_h) <= tolerance);
  CHECK(relative(y, want_y) <= tolerance);
  // Training, the whole sequence on a tape.
  ad::Tape<Scalar> tape;
  const auto sequence = cell.forward_sequence(nn::on_tape(tape, params), tape.constant(x), batch,
                                              {.initial_state = tape.constant(initial)});
  CHECK(relative(sequence.value(), want_h) <= tolerance);
  CHECK(relative(nn::linear(nn::on_tape(tape, head), sequence).value(), want_y) <= tolerance);
}

}  // namespace

TEST_CASE("PyTorch's own state_dicts (GRUCell, LSTMCell, Linear; float32 and float64) import and reproduce their outputs") {
  const char* env = std::getenv("SSMRL_TORCH_STATE_DICTS");
  const fs::path dir = env != nullptr && *env != '\0' ? fs::path(env) : fs::path(SSMRL_TORCH_STATE_DICTS_DEFAULT);
  INFO("folder: " << dir.string());
  REQUIRE(fs::is_directory(dir));
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".safetensors") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(!files.empty());
  for (const auto& path : files) {
    CAPTURE(path.filename().string());
    const auto file = io::NamedTensors::read(path);
    const auto& weight_hh = file.at("rnn.weight_hh");
    REQUIRE(weight_hh.shape.size() == 2);
    const auto gates = weight_hh.shape[0] / weight_hh.shape[1];
    REQUIRE((gates == 3 || gates == 4));
    REQUIRE(weight_hh.shape[0] == gates * weight_hh.shape[1]);
    const bool single = weight_hh.dtype == io::DType::f32;
    if (gates == 3 && single) check_torch_file<float, nn::GruCell<float>>(file, 1e-5);
    if (gates == 3 && !single) check_torch_file<double, nn::GruCell<double>>(file, 1e-12);
    if (gates == 4 && single) check_torch_file<float, nn::LstmCell<float>>(file, 1e-5);
    if (gates == 4 && !single) check_torch_file<double, nn::LstmCell<double>>(file, 1e-12);
  }
}

TEST_CASE("an SVG plot holds one polyline per series, with escaped labels") {
  const auto svg = io::svg_text({"returns <train>", "x", "y", {{"a", {0, 1, 2}, {1, 3, 2}}, {"b", {0, 2}, {0, 1}}}});
  std::size_t count = 0;
  for (auto at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++count;
  CHECK(count == 2);
  CHECK(svg.find("returns &lt;train&gt;") != std::string::npos);
  // Round ticks: whole iterations on an axis of whole numbers, steps of 1, 2, 2.5 or 5 x 10^k; the marker is drawn.
  CHECK(io::detail::nice_ticks(1, 3, true) == std::vector<double>{1, 2, 3});
  CHECK(io::detail::nice_ticks(-1220, -180) == std::vector<double>{-1200, -1000, -800, -600, -400, -200});
  const auto unit = io::detail::nice_ticks(0, 1);
  REQUIRE(unit.size() == 6);
  for (std::size_t k = 0; k < unit.size(); ++k) CHECK(unit[k] == doctest::Approx(0.2 * static_cast<double>(k)));
  CHECK(io::detail::nice_ticks(0, 250000) == std::vector<double>{0, 50000, 100000, 150000, 200000, 250000});
  io::LinePlot marked{"t", "iteration", "return", {{"a", {1, 2, 3}, {-90, -80, -62}}}, {{3, -62, "best (3)"}}};
  const auto with_marker = io::svg_text(marked);
  CHECK(with_marker.find(">1.5<") == std::string::npos);
  CHECK(with_marker.find(">2<") != std::string::npos);
  CHECK(with_marker.find("<circle") != std::string::npos);
  CHECK(with_marker.find("best (3)") != std::string::npos);
  CHECK(test::message_of<InvalidArgument>([] { (void)io::svg_text({"t", "x", "y", {{"a", {0, 1}, {1}}}}); })
            .find("series 'a' has 2 x and 1 y values") != std::string::npos);
}

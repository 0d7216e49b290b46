// A table of numbers with named columns, written to CSV atomically and read back (xtensor's CSV
// reader), for training curves that a resumed run extends.
#pragma once

#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <xtensor/xcsv.hpp>

#include "ssmrl/core/error.hpp"
#include "ssmrl/io/file.hpp"

namespace ssmrl::io {

class CsvTable {
public:
  explicit CsvTable(std::vector<std::string> columns) : columns_(std::move(columns)) {
    SSMRL_REQUIRE(!columns_.empty(), "io::CsvTable: no columns");
    for (const auto& c : columns_) {
      SSMRL_REQUIRE(!c.empty() && c.find_first_of(",\"\n") == std::string::npos, "io::CsvTable: column name '", c,
                    "' is empty or holds a comma, quote or newline");
    }
  }

  [[nodiscard]] const std::vector<std::string>& columns() const noexcept { return columns_; }
  [[nodiscard]] const std::vector<std::vector<double>>& rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t column_index(const std::string& name) const {
    for (std::size_t i = 0; i < columns_.size(); ++i) {
      if (columns_[i] == name) return i;
    }
    SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message("io::CsvTable::column_index: no column '", name, "'"));
  }
  [[nodiscard]] std::vector<double> column(const std::string& name) const {
    const auto c = column_index(name);
    std::vector<double> out;
    out.reserve(rows_.size());
    for (const auto& r : rows_) out.push_back(r[c]);
    return out;
  }

  void add_row(std::vector<double> row) {
    SSMRL_REQUIRE(row.size() == columns_.size(), "io::CsvTable::add_row: ", row.size(), " values for ",
                  columns_.size(), " columns");
    rows_.push_back(std::move(row));
  }
  //! Keeps the first `count` rows.
  void truncate(std::size_t count) {
    if (count < rows_.size()) rows_.resize(count);
  }

  //! Header and rows; numbers with enough digits to read back exactly.
  [[nodiscard]] std::string text() const {
    std::ostringstream out;
    out.precision(std::numeric_limits<double>::max_digits10);
    for (std::size_t i = 0; i < columns_.size(); ++i) out << (i ? "," : "") << columns_[i];
    out << '\n';
    for (const auto& r : rows_) {
      for (std::size_t i = 0; i < r.size(); ++i) out << (i ? "," : "") << r[i];
      out << '\n';
    }
    return out.str();
  }
  void write(const std::filesystem::path& path) const { write_file_atomically("io::CsvTable::write", path, text()); }

  //! Reads a file written by write(); its header must name exactly `columns`.
  static CsvTable read(const std::filesystem::path& path, std::vector<std::string> columns) {
    const char* fn = "io::CsvTable::read";
    CsvTable table(std::move(columns));
    std::istringstream in(read_file(fn, path));
    std::string header;
    std::getline(in, header);
    std::string expected;
    for (std::size_t i = 0; i < table.columns_.size(); ++i) expected += (i ? "," : "") + table.columns_[i];
    SSMRL_REQUIRE(header == expected, fn, ": '", path.string(), "' has columns '", header, "', expected '", expected, "'");
    if (in.peek() == std::char_traits<char>::eof()) return table;
    const auto values = xt::load_csv<double>(in);
    SSMRL_REQUIRE(values.dimension() == 2 && values.shape()[1] == table.columns_.size(), fn, ": '", path.string(),
                  "' has rows of ", values.dimension() == 2 ? values.shape()[1] : 0, " values, expected ",
                  table.columns_.size());
    for (std::size_t r = 0; r < values.shape()[0]; ++r) {
      std::vector<double> row;
      for (std::size_t c = 0; c < values.shape()[1]; ++c) row.push_back(values(r, c));
      table.rows_.push_back(std::move(row));
    }
    return table;
  }

private:
  std::vector<std::string> columns_;
  std::vector<std::vector<double>> rows_;
};

}  // namespace ssmrl::io

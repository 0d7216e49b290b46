// A table of numbers with named columns, written to CSV atomically and durably and read back
// strictly, for training curves that a resumed run extends.
#pragma once

#include <charconv>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

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
    return parse(read_file("io::CsvTable::read", path), path.string(), std::move(columns));
  }

  //! Parses the text of a table: a header naming exactly `columns`, then rows of exactly that many
  //! numbers (as std::from_chars reads them, "nan" and "inf" included), each line ended by a newline.
  //! Anything else throws ssmrl::InvalidArgument naming `origin`, the line and the column.
  static CsvTable parse(std::string_view text, const std::string& origin, std::vector<std::string> columns) {
    const char* fn = "io::CsvTable::read";
    CsvTable table(std::move(columns));
    std::string expected;
    for (std::size_t i = 0; i < table.columns_.size(); ++i) expected += (i ? "," : "") + table.columns_[i];
    std::size_t line_number = 0;
    std::size_t at = 0;
    while (at < text.size()) {
      ++line_number;
      const auto end = text.find('\n', at);
      SSMRL_REQUIRE(end != std::string_view::npos, fn, ": '", origin, "' line ", line_number,
                    ": the last line has no newline (a torn write?)");
      std::string_view line = text.substr(at, end - at);
      at = end + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line_number == 1) {
        SSMRL_REQUIRE(line == expected, fn, ": '", origin, "' has columns '", line, "', expected '", expected, "'");
        continue;
      }
      std::vector<double> row;
      row.reserve(table.columns_.size());
      std::size_t field_start = 0;
      for (std::size_t column = 1;; ++column) {
        const auto comma = line.find(',', field_start);
        const auto field = line.substr(field_start, comma == std::string_view::npos ? std::string_view::npos
                                                                                     : comma - field_start);
        SSMRL_REQUIRE(column <= table.columns_.size(), fn, ": '", origin, "' line ", line_number, " column ", column,
                      ": more than the ", table.columns_.size(), " values of the header");
        double value = 0;
        const auto [stop, error] = std::from_chars(field.data(), field.data() + field.size(), value);
        SSMRL_REQUIRE(!field.empty() && stop == field.data() + field.size() && error == std::errc{}, fn, ": '", origin,
                      "' line ", line_number, " column ", column, " (", table.columns_[column - 1], "): '", field,
                      "' is not a number", error == std::errc::result_out_of_range ? " in the range of a double" : "");
        row.push_back(value);
        if (comma == std::string_view::npos) break;
        field_start = comma + 1;
      }
      SSMRL_REQUIRE(row.size() == table.columns_.size(), fn, ": '", origin, "' line ", line_number, " has ", row.size(),
                    " values, the header names ", table.columns_.size());
      table.rows_.push_back(std::move(row));
    }
    SSMRL_REQUIRE(line_number >= 1, fn, ": '", origin, "' is empty; expected the header '", expected, "'");
    return table;
  }

private:
  std::vector<std::string> columns_;
  std::vector<std::vector<double>> rows_;
};

}  // namespace ssmrl::io

// A table of numbers (and, in columns named as such, short texts) with named columns, written to
// CSV atomically and durably and read back strictly, for training curves that a resumed run extends.
#pragma once

#include <charconv>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include "ssmrl/core/error.hpp"
#include "ssmrl/io/file.hpp"

namespace ssmrl::io {

//! Whether a text cell can be written unquoted: no comma, quote, carriage return or newline.
inline bool plain_csv_text(std::string_view text) { return text.find_first_of(",\"\r\n") == std::string_view::npos; }

class CsvTable {
public:
  //! A cell of add_row(): a number, or a text in a text column.
  using Cell = std::variant<double, std::string>;

  //! `text_columns` names the columns that hold texts (the rest hold numbers).
  explicit CsvTable(std::vector<std::string> columns, const std::vector<std::string>& text_columns = {})
      : columns_(std::move(columns)), is_text_(columns_.size(), false) {
    SSMRL_REQUIRE(!columns_.empty(), "io::CsvTable: no columns");
    for (const auto& c : columns_) {
      SSMRL_REQUIRE(!c.empty() && plain_csv_text(c), "io::CsvTable: column name '", c,
                    "' is empty or holds a comma, quote or newline");
    }
    for (const auto& t : text_columns) is_text_[column_index(t)] = true;
  }

  [[nodiscard]] const std::vector<std::string>& columns() const noexcept { return columns_; }
  [[nodiscard]] const std::vector<std::vector<double>>& rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t column_index(const std::string& name) const {
    for (std::size_t i = 0; i < columns_.size(); ++i) {
      if (columns_[i] == name) return i;
    }
    SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message("io::CsvTable::column_index: no column '", name, "'"));
  }
  [[nodiscard]] bool is_text_column(std::size_t c) const { return is_text_.at(c); }
  //! The texts of a text column, one per row.
  [[nodiscard]] std::vector<std::string> text_column(const std::string& name) const {
    const auto c = column_index(name);
    SSMRL_REQUIRE(is_text_[c], "io::CsvTable::text_column: '", name, "' holds numbers");
    const auto k = text_index(c);
    std::vector<std::string> out;
    for (const auto& r : texts_) out.push_back(r[k]);
    return out;
  }
  //! The numbers of a number column (NaN for every row of a text column).
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
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      SSMRL_REQUIRE(!is_text_[c], "io::CsvTable::add_row: column '", columns_[c], "' holds texts; use add_cells");
    }
    rows_.push_back(std::move(row));
    texts_.emplace_back();
  }
  //! A row of numbers and texts, each cell of its column's kind; texts must be plain_csv_text().
  void add_cells(const std::vector<Cell>& cells) {
    SSMRL_REQUIRE(cells.size() == columns_.size(), "io::CsvTable::add_cells: ", cells.size(), " values for ",
                  columns_.size(), " columns");
    std::vector<double> numbers(cells.size(), std::numeric_limits<double>::quiet_NaN());
    std::vector<std::string> texts;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      SSMRL_REQUIRE(is_text_[c] == std::holds_alternative<std::string>(cells[c]), "io::CsvTable::add_cells: column '",
                    columns_[c], "' holds ", is_text_[c] ? "texts" : "numbers");
      if (is_text_[c]) {
        const auto& t = std::get<std::string>(cells[c]);
        SSMRL_REQUIRE(plain_csv_text(t), "io::CsvTable::add_cells: text '", t, "' of column '", columns_[c],
                      "' holds a comma, quote or newline");
        texts.push_back(t);
      } else {
        numbers[c] = std::get<double>(cells[c]);
      }
    }
    rows_.push_back(std::move(numbers));
    texts_.push_back(std::move(texts));
  }
  //! Keeps the first `count` rows.
  void truncate(std::size_t count) {
    if (count < rows_.size()) {
      rows_.resize(count);
      texts_.resize(count);
    }
  }

  //! Header and rows; numbers with enough digits to read back exactly.
  [[nodiscard]] std::string text() const {
    std::ostringstream out;
    out.precision(std::numeric_limits<double>::max_digits10);
    for (std::size_t i = 0; i < columns_.size(); ++i) out << (i ? "," : "") << columns_[i];
    out << '\n';
    for (std::size_t row = 0; row < rows_.size(); ++row) {
      std::size_t text = 0;
      for (std::size_t i = 0; i < columns_.size(); ++i) {
        out << (i ? "," : "");
        if (is_text_[i]) out << texts_[row][text++];
        else out << rows_[row][i];
      }
      out << '\n';
    }
    return out.str();
  }
  void write(const std::filesystem::path& path) const { write_file_atomically("io::CsvTable::write", path, text()); }

  //! Reads a file written by write(); its header must name exactly `columns`.
  static CsvTable read(const std::filesystem::path& path, std::vector<std::string> columns,
                       const std::vector<std::string>& text_columns = {}, bool torn_last_line_ignored = false) {
    return parse(read_file("io::CsvTable::read", path), path.string(), std::move(columns), text_columns,
                 torn_last_line_ignored);
  }

  //! Parses the text of a table: a header naming exactly `columns`, then rows of exactly that many
  //! numbers (as std::from_chars reads them, "nan" and "inf" included), each line ended by a newline.
  //! Anything else throws ssmrl::InvalidArgument naming `origin`, the line and the column. Text
  //! columns take any plain text. With `torn_last_line_ignored` (an appended log, whose writer may
  //! have stopped in a line) a last line without its newline is left out instead.
  static CsvTable parse(std::string_view text, const std::string& origin, std::vector<std::string> columns,
                        const std::vector<std::string>& text_columns = {}, bool torn_last_line_ignored = false) {
    const char* fn = "io::CsvTable::read";
    CsvTable table(std::move(columns), text_columns);
    std::string expected;
    for (std::size_t i = 0; i < table.columns_.size(); ++i) expected += (i ? "," : "") + table.columns_[i];
    std::size_t line_number = 0;
    std::size_t at = 0;
    while (at < text.size()) {
      ++line_number;
      const auto end = text.find('\n', at);
      if (end == std::string_view::npos && torn_last_line_ignored && line_number > 1) break;
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
      std::vector<std::string> texts;
      row.reserve(table.columns_.size());
      std::size_t field_start = 0;
      for (std::size_t column = 1;; ++column) {
        const auto comma = line.find(',', field_start);
        const auto field = line.substr(field_start, comma == std::string_view::npos ? std::string_view::npos
                                                                                     : comma - field_start);
        SSMRL_REQUIRE(column <= table.columns_.size(), fn, ": '", origin, "' line ", line_number, " column ", column,
                      ": more than the ", table.columns_.size(), " values of the header");
        if (table.is_text_[column - 1]) {
          SSMRL_REQUIRE(plain_csv_text(field), fn, ": '", origin, "' line ", line_number, " column ", column, " (",
                        table.columns_[column - 1], "): a quote in '", field, "'");
          row.push_back(std::numeric_limits<double>::quiet_NaN());
          texts.emplace_back(field);
          if (comma == std::string_view::npos) break;
          field_start = comma + 1;
          continue;
        }
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
      table.texts_.push_back(std::move(texts));
    }
    SSMRL_REQUIRE(line_number >= 1, fn, ": '", origin, "' is empty; expected the header '", expected, "'");
    return table;
  }

private:
  [[nodiscard]] std::size_t text_index(std::size_t c) const {
    std::size_t k = 0;
    for (std::size_t i = 0; i < c; ++i) k += is_text_[i] ? 1 : 0;
    return k;
  }
  std::vector<std::string> columns_;
  std::vector<bool> is_text_;
  std::vector<std::vector<double>> rows_;
  std::vector<std::vector<std::string>> texts_;  //!< per row, the text columns' cells in order
};

}  // namespace ssmrl::io

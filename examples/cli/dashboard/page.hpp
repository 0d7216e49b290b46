// The dashboard's page: its files, compiled into the program (embed_page.cmake) so that the page
// needs nothing but the server.
#pragma once

#include <vector>

namespace ssmrl::cli::dashboard {

struct PageFile {
  const char* path;  //!< the URL path it is served at
  const char* type;  //!< its Content-Type
  const char* text;
};

const std::vector<PageFile>& page_files();

}  // namespace ssmrl::cli::dashboard

// Placed first on the include path of the core consumer: <ssmrl/core.hpp> must not need nlohmann-json.
#error "<ssmrl/core.hpp> includes nlohmann/json.hpp; only the I/O headers may"

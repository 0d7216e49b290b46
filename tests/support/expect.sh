# The checks of the shell tests, sourced by them: fail MESSAGE counts a failure; expect STATUS
# PATTERN COMMAND... runs COMMAND and checks its exit status and that a line of its output (stdout
# and stderr) matches the extended regular expression PATTERN.
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect() {
  local status=$1 pattern=$2
  shift 2
  local out
  out=$("$@" 2>&1)
  local got=$?
  [ "$got" -eq "$status" ] || fail "$* exited with $got, expected $status: $out"
  grep -Eq -- "$pattern" <<<"$out" || fail "$* printed no line matching '$pattern': $out"
}

#include "util/process_identity.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

namespace cairn {
namespace {

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// State letter and start time (field 22) of /proc/<pid>/stat; the process
// name (field 2) may contain spaces and parentheses, so fields are counted
// from the last ')'. False if there is no such process.
bool ReadStat(int64_t pid, char* state, int64_t* start_ticks) {
  std::string stat = ReadSmallFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return false;
  std::string_view rest(stat);
  rest.remove_prefix(close + 1);
  int field = 2;
  *state = '?';
  *start_ticks = 0;
  while (!rest.empty()) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    size_t end = rest.find(' ');
    std::string_view value = rest.substr(0, end);
    ++field;
    if (field == 3 && !value.empty()) *state = value.front();
    if (field == 22) {
      std::from_chars(value.data(), value.data() + value.size(), *start_ticks);
      return true;
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end);
  }
  return false;
}

std::string Machine() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::string boot = ReadSmallFile("/proc/sys/kernel/random/boot_id");
  while (!boot.empty() && (boot.back() == '\n' || boot.back() == ' ')) boot.pop_back();
  if (boot.empty()) return "";  // without a boot id a pid from before a reboot looks alive
  return std::string(host) + "/" + boot;
}

}  // namespace

ProcessIdentity SelfIdentity() {
  static const ProcessIdentity self = [] {
    ProcessIdentity id;
    id.pid = ::getpid();
    char state;
    if (!ReadStat(id.pid, &state, &id.start_ticks)) id.start_ticks = 0;
    id.machine = Machine();
    return id;
  }();
  ProcessIdentity id = self;
  id.pid = ::getpid();  // after a fork
  if (id.pid != self.pid) {
    char state;
    if (!ReadStat(id.pid, &state, &id.start_ticks)) id.start_ticks = 0;
  }
  return id;
}

Liveness CheckProcess(const ProcessIdentity& id) {
  if (id.pid <= 0 || id.start_ticks == 0 || id.machine.empty()) return Liveness::kUnknown;
  static const std::string here = Machine();
  if (id.machine != here) return Liveness::kUnknown;
  char state;
  int64_t start = 0;
  if (!ReadStat(id.pid, &state, &start)) {
    // No /proc entry: gone, unless /proc cannot be read at all.
    return ::kill(static_cast<pid_t>(id.pid), 0) == -1 && errno == ESRCH ? Liveness::kGone
                                                                          : Liveness::kUnknown;
  }
  if (state == 'Z' || state == 'X' || start != id.start_ticks) return Liveness::kGone;
  return Liveness::kAlive;
}

}  // namespace cairn

#include "exec/fork_server.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "exec/running_task.h"
#include "exec/task_process.h"

namespace cairn {
namespace {

constexpr size_t kHeaderBytes = 8;

sigset_t ServerSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGCHLD);
  return set;
}

uint32_t LittleEndian32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

Status ReadExactly(int fd, char* out, size_t n) {
  while (n > 0) {
    ssize_t got = ::recv(fd, out, n, MSG_WAITALL);
    if (got == 0) return Status::IOError("worker socket closed mid-request");
    if (got < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "reading a request");
    }
    out += got;
    n -= static_cast<size_t>(got);
  }
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<ForkServer>> ForkServer::Start(int socket_fd, pid_t parent) {
  sigset_t set = ServerSignals();
  // Blocked and read from a signalfd: handled in the loop, never in between
  // a fork and the bookkeeping of its child.
  if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return Status::FromErrno(errno, "sigprocmask");
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) return Status::FromErrno(errno, "signalfd");
  std::unique_ptr<ForkServer> server(new ForkServer(socket_fd, sfd));
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) return Status::FromErrno(errno, "prctl(PR_SET_PDEATHSIG)");
  if (getppid() != parent) _exit(1);  // the engine died before we asked
  return server;
}

ForkServer::ForkServer(int socket_fd, int signal_fd) : socket_fd_(socket_fd), signal_fd_(signal_fd) {}

ForkServer::~ForkServer() {
  if (socket_fd_ >= 0) ::close(socket_fd_);
  if (signal_fd_ >= 0) ::close(signal_fd_);
}

Result<std::optional<ForkRequest>> ForkServer::Serve(const PrepareFn& prepare, const ForkFn& fork) {
  Result<std::optional<ForkRequest>> request = ServeRequests(prepare, fork);
  // A worker that stops serving for any reason takes its tasks along: a task
  // forked just as the engine died must not outlive both.
  if (!request.ok()) KillGroups();
  return request;
}

Result<std::optional<ForkRequest>> ForkServer::ServeRequests(const PrepareFn& prepare, const ForkFn& fork) {
  const pid_t worker = ::getpid();
  for (;;) {
    pollfd fds[2] = {{socket_fd_, POLLIN, 0}, {signal_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "poll");
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info;
      while (::read(signal_fd_, &info, sizeof(info)) == sizeof(info)) {
        if (info.ssi_signo == SIGTERM) {  // the engine died
          KillGroups();
          _exit(1);
        }
        if (info.ssi_signo == SIGCHLD) break;  // coalesced; Reap takes them all
      }
    }
    CAIRN_RETURN_IF_ERROR(Reap());
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;

    ForkRequest request;
    CAIRN_ASSIGN_OR_RETURN(bool got, ReadRequest(&request));
    if (!got) break;
    try {
      nlohmann::json header = nlohmann::json::parse(request.header);
      request.key = header.at("key").get<int64_t>();
      if (auto env = header.find("env"); env != header.end()) {
        for (const auto& [name, value] : env->items()) request.env.emplace_back(name, value.get<std::string>());
      }
      bool fresh = false;
      for (const auto& digest : header.value("preload", nlohmann::json::array())) {
        fresh = prepared_.insert(digest.get<std::string>()).second || fresh;
      }
      if (fresh) prepare(request);
    } catch (const nlohmann::json::exception& e) {
      return Status::Corruption(std::string("malformed request header: ") + e.what());
    }
    pid_t pid = fork();
    if (pid < 0) return Status::FromErrno(errno, "fork");
    if (pid == 0) {
      BecomeChild(worker);
      return std::optional<ForkRequest>(std::move(request));
    }
    children_.emplace(pid, request.key);
    setpgid(pid, pid);  // the child does it too; whoever is first wins
    for (int& fd : request.fds) ::close(fd);
    CAIRN_RETURN_IF_ERROR(Send("{\"key\":" + std::to_string(request.key) + ",\"pid\":" + std::to_string(pid) + "}\n"));
    CAIRN_RETURN_IF_ERROR(Reap());
  }
  // The engine is done (or gone): nothing of a task may outlive the worker.
  KillGroups();
  return std::optional<ForkRequest>();
}

Result<bool> ForkServer::ReadRequest(ForkRequest* request) {
  unsigned char head[kHeaderBytes];
  char control[CMSG_SPACE(3 * sizeof(int))];
  iovec iov{head, kHeaderBytes};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t got;
  do {
    got = ::recvmsg(socket_fd_, &msg, MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  if (got == 0 || (got < 0 && errno == ECONNRESET)) return false;
  if (got < 0) return Status::FromErrno(errno, "reading a request");
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(3 * sizeof(int))) {
      std::memcpy(request->fds, CMSG_DATA(c), 3 * sizeof(int));
    }
  }
  if (request->fds[2] < 0) return Status::Corruption("a request came without its three descriptors");
  if (static_cast<size_t>(got) < kHeaderBytes) {
    CAIRN_RETURN_IF_ERROR(ReadExactly(socket_fd_, reinterpret_cast<char*>(head) + got, kHeaderBytes - got));
  }
  uint32_t header_len = LittleEndian32(head);
  uint32_t payload_len = LittleEndian32(head + 4);
  request->header.resize(header_len);
  request->payload.resize(payload_len);
  CAIRN_RETURN_IF_ERROR(ReadExactly(socket_fd_, request->header.data(), header_len));
  CAIRN_RETURN_IF_ERROR(ReadExactly(socket_fd_, request->payload.data(), payload_len));
  return true;
}

Status ForkServer::Send(const std::string& line) {
  size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = ::send(socket_fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "replying to the engine");
    }
    sent += static_cast<size_t>(n);
  }
  return Status::OK();
}

Status ForkServer::Reap() {
  while (!children_.empty()) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return Status::OK();
    auto it = children_.find(pid);
    if (it == children_.end()) continue;
    int64_t key = it->second;
    children_.erase(it);
    CAIRN_RETURN_IF_ERROR(Send("{\"key\":" + std::to_string(key) + ",\"status\":" + std::to_string(status) + "}\n"));
  }
  return Status::OK();
}

void ForkServer::KillGroups() {
  for (const auto& [pid, key] : children_) KillProcessGroup(pid);
}

void ForkServer::BecomeChild(pid_t worker) {
  // First of all: the death signal is not inherited across fork(), and until
  // it is set a worker killed with SIGKILL would leave this child behind.
  (void)DieWithParent(worker);
  ::close(socket_fd_);
  ::close(signal_fd_);
  socket_fd_ = signal_fd_ = -1;
  children_.clear();
  sigset_t set = ServerSignals();
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace cairn

#include "exec/task_process.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#ifdef __linux__
#include <sys/prctl.h>
#endif

namespace cairn {
namespace {

Status KillMeWithParent() {
#ifdef __linux__
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    return Status::FromErrno(errno, "prctl(PR_SET_PDEATHSIG)");
  }
#endif
  return Status::OK();
}

}  // namespace

Status BecomeTaskProcess() {
  // EPERM: we lead a session, and so already lead our process group.
  if (setpgid(0, 0) != 0 && errno != EPERM) return Status::FromErrno(errno, "setpgid");
  return KillMeWithParent();
}

Status BecomeForkedTask(int stdout_fd, int stderr_fd) {
  for (int sig : {SIGINT, SIGTERM, SIGCHLD, SIGHUP}) ::signal(sig, SIG_DFL);
  if (::dup2(stdout_fd, 1) < 0 || ::dup2(stderr_fd, 2) < 0) return Status::FromErrno(errno, "dup2");
  if (stdout_fd > 2) ::close(stdout_fd);
  if (stderr_fd > 2) ::close(stderr_fd);
  return BecomeTaskProcess();
}

Status DieWithParent(pid_t expected_parent) {
  CAIRN_RETURN_IF_ERROR(KillMeWithParent());
  // Checked after the request, so no window remains in which the parent can
  // die unnoticed.
  if (getppid() != expected_parent) _exit(1);
  return Status::OK();
}

}  // namespace cairn

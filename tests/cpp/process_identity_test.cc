#include "util/process_identity.h"

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace cairn {
namespace {

TEST(ProcessIdentityTest, SelfIsAlive) {
  ProcessIdentity self = SelfIdentity();
  EXPECT_EQ(self.pid, getpid());
  EXPECT_GT(self.start_ticks, 0);
  EXPECT_FALSE(self.machine.empty());
  EXPECT_EQ(CheckProcess(self), Liveness::kAlive);
}

TEST(ProcessIdentityTest, ADifferentStartTimeIsAnotherProcess) {
  ProcessIdentity id = SelfIdentity();
  id.start_ticks += 1;
  EXPECT_EQ(CheckProcess(id), Liveness::kGone);
}

TEST(ProcessIdentityTest, AnExitedChildIsGone) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ProcessIdentity id = SelfIdentity();
  id.pid = pid;
  EXPECT_EQ(CheckProcess(id), Liveness::kGone);
}

TEST(ProcessIdentityTest, AnotherMachineOrTooLittleKnownIsUnknown) {
  ProcessIdentity id = SelfIdentity();
  id.machine = "elsewhere/0";
  EXPECT_EQ(CheckProcess(id), Liveness::kUnknown);
  id = SelfIdentity();
  id.start_ticks = 0;
  EXPECT_EQ(CheckProcess(id), Liveness::kUnknown);
}

}  // namespace
}  // namespace cairn

#include "exec/interrupt.h"

#include <poll.h>
#include <signal.h>

#include <gtest/gtest.h>

namespace cairn {
namespace {

int g_custom_calls = 0;
void CustomHandler(int) { ++g_custom_calls; }

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

// Installs CustomHandler for `sig` for the test's duration, standing in for
// Python's own SIGINT handler.
class CustomHandlerScope {
 public:
  explicit CustomHandlerScope(int sig) : sig_(sig) {
    struct sigaction action = {};
    action.sa_handler = CustomHandler;
    sigemptyset(&action.sa_mask);
    sigaction(sig_, &action, &previous_);
  }
  ~CustomHandlerScope() { sigaction(sig_, &previous_, nullptr); }

 private:
  int sig_;
  struct sigaction previous_;
};

TEST(InterruptCatcherTest, RaisedSigintIsCaughtAndWakesTheFd) {
  CustomHandlerScope scope(SIGINT);
  auto catcher = InterruptCatcher::Install();
  ASSERT_TRUE(catcher.ok()) << catcher.status().ToString();
  EXPECT_FALSE(Readable((*catcher)->fd()));
  EXPECT_FALSE((*catcher)->interrupted());

  g_custom_calls = 0;
  raise(SIGINT);
  EXPECT_TRUE(Readable((*catcher)->fd()));
  EXPECT_TRUE((*catcher)->interrupted());
  EXPECT_EQ((*catcher)->signal(), SIGINT);
  EXPECT_EQ(g_custom_calls, 0);
  // Drained: only a new signal wakes poll() again.
  EXPECT_FALSE(Readable((*catcher)->fd()));
}

TEST(InterruptCatcherTest, FirstSignalIsKept) {
  CustomHandlerScope term(SIGTERM);
  CustomHandlerScope hup(SIGHUP);
  auto catcher = InterruptCatcher::Install();
  ASSERT_TRUE(catcher.ok());
  raise(SIGTERM);
  raise(SIGHUP);
  EXPECT_EQ((*catcher)->signal(), SIGTERM);
  raise(SIGHUP);
  EXPECT_TRUE(Readable((*catcher)->fd()));
  EXPECT_EQ((*catcher)->signal(), SIGTERM);
}

TEST(InterruptCatcherTest, PreviousHandlerIsRestored) {
  CustomHandlerScope scope(SIGINT);
  {
    auto catcher = InterruptCatcher::Install();
    ASSERT_TRUE(catcher.ok());
  }
  struct sigaction current;
  ASSERT_EQ(sigaction(SIGINT, nullptr, &current), 0);
  EXPECT_EQ(current.sa_handler, &CustomHandler);
  g_custom_calls = 0;
  raise(SIGINT);
  EXPECT_EQ(g_custom_calls, 1);
}

TEST(InterruptCatcherTest, OnlyOneCatcherAtATime) {
  auto first = InterruptCatcher::Install();
  ASSERT_TRUE(first.ok());
  auto second = InterruptCatcher::Install();
  EXPECT_EQ(second.status().code(), Status::Code::kInvalidArgument);
  first->reset();
  auto third = InterruptCatcher::Install();
  EXPECT_TRUE(third.ok());
}

}  // namespace
}  // namespace cairn

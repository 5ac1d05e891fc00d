#include "store/sqlite.h"

#include <sqlite3.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "test_util.h"

namespace cairn {
namespace {

constexpr int kCreate = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

class SqliteTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(db_, Db::Open(dir_.Join("test.db"), kCreate));
    ASSERT_OK(db_.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, x REAL)"));
  }

  int64_t Count() {
    Result<Stmt> count = db_.Prepare("SELECT count(*) FROM t");
    if (!count.ok()) return -1;
    Result<bool> row = count->Step();
    return row.ok() && *row ? count->ColumnInt64(0) : -1;
  }

  test::TempDir dir_;
  Db db_;
};

TEST_F(SqliteTest, OpensInWalMode) {
  ASSERT_OK_AND_ASSIGN(Stmt mode, db_.Prepare("PRAGMA journal_mode"));
  ASSERT_OK_AND_ASSIGN(bool row, mode.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(mode.ColumnText(0), "wal");
}

TEST_F(SqliteTest, BindsAndReadsEveryType) {
  ASSERT_OK_AND_ASSIGN(Stmt insert, db_.Prepare("INSERT INTO t (id, name, x) VALUES (?1, ?2, ?3)"));
  std::string with_nul("a\0b", 3);
  ASSERT_OK(insert.Reset().Bind(1, int64_t{1} << 40).Bind(2, with_nul).Bind(3, 2.5).Run());
  ASSERT_OK(insert.Reset().Bind(1, 7).Bind(2, "seven").Bind(3, -1.0).Run());
  EXPECT_EQ(db_.Changes(), 1);
  EXPECT_EQ(db_.LastInsertRowid(), 7);

  ASSERT_OK_AND_ASSIGN(Stmt select, db_.Prepare("SELECT id, name, x, NULL FROM t ORDER BY id"));
  std::vector<std::string> names;
  ASSERT_OK(select.ForEachRow([&](const Stmt& row) {
    names.push_back(row.ColumnText(1));
    EXPECT_TRUE(row.ColumnIsNull(3));
    if (row.ColumnInt64(0) == 7) {
      EXPECT_EQ(row.ColumnDouble(2), -1.0);
    }
  }));
  EXPECT_EQ(names, (std::vector<std::string>{"seven", with_nul}));
  // A statement that ran to the end can run again without an explicit Reset.
  int rows = 0;
  ASSERT_OK(select.ForEachRow([&](const Stmt&) { ++rows; }));
  EXPECT_EQ(rows, 2);
}

TEST_F(SqliteTest, BindErrorIsReportedByStep) {
  ASSERT_OK_AND_ASSIGN(Stmt insert, db_.Prepare("INSERT INTO t (id) VALUES (?1)"));
  Status s = insert.Reset().Bind(2, 1).Run();
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find("parameter 2"), std::string::npos) << s.message();
}

TEST_F(SqliteTest, ConstraintViolationIsInvalidArgument) {
  ASSERT_OK_AND_ASSIGN(Stmt insert, db_.Prepare("INSERT INTO t (id) VALUES (?1)"));
  ASSERT_OK(insert.Reset().Bind(1, 1).Run());
  Status s = insert.Reset().Bind(1, 1).Run();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("UNIQUE"), std::string::npos) << s.message();
}

TEST_F(SqliteTest, PrepareErrorNamesTheStatement) {
  Result<Stmt> bad = db_.Prepare("SELECT nope FROM t");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("SELECT nope"), std::string::npos)
      << bad.status().message();
}

TEST_F(SqliteTest, TxnRollsBackUnlessCommitted) {
  {
    ASSERT_OK_AND_ASSIGN(Txn txn, Txn::Begin(db_));
    ASSERT_OK(db_.Exec("INSERT INTO t (id) VALUES (1)"));
  }
  EXPECT_EQ(Count(), 0);
  {
    ASSERT_OK_AND_ASSIGN(Txn txn, Txn::Begin(db_));
    ASSERT_OK(db_.Exec("INSERT INTO t (id) VALUES (2)"));
    ASSERT_OK(txn.Commit());
  }
  EXPECT_EQ(Count(), 1);
}

TEST_F(SqliteTest, SecondWriterWaitsForTheFirstInsteadOfFailing) {
  ASSERT_OK_AND_ASSIGN(Db other, Db::Open(dir_.Join("test.db"), kCreate));
  ASSERT_OK_AND_ASSIGN(Txn first, Txn::Begin(db_));
  ASSERT_OK(db_.Exec("INSERT INTO t (id) VALUES (1)"));
  Status second_status;
  std::thread second([&] {
    Result<Txn> txn = Txn::Begin(other);
    second_status = txn.status();
    if (!txn.ok()) return;
    second_status = other.Exec("INSERT INTO t (id) VALUES (2)");
    if (second_status.ok()) second_status = txn->Commit();
  });
  // Hold the write lock for a while: the other connection must wait, not fail.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_OK(first.Commit());
  second.join();
  EXPECT_OK(second_status);
  EXPECT_EQ(Count(), 2);
}

TEST_F(SqliteTest, ReaderSeesCommittedDataWhileAWriterIsActive) {
  ASSERT_OK(db_.Exec("INSERT INTO t (id) VALUES (1)"));
  ASSERT_OK_AND_ASSIGN(Db reader, Db::Open(dir_.Join("test.db"), SQLITE_OPEN_READONLY));
  ASSERT_OK_AND_ASSIGN(Txn txn, Txn::Begin(db_));
  ASSERT_OK(db_.Exec("INSERT INTO t (id) VALUES (2)"));
  ASSERT_OK_AND_ASSIGN(Stmt count, reader.Prepare("SELECT count(*) FROM t"));
  ASSERT_OK_AND_ASSIGN(bool row, count.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(count.ColumnInt64(0), 1);
  count.Reset();
  ASSERT_OK(txn.Commit());
}

TEST_F(SqliteTest, AnnotateKeepsTheCode) {
  Status s = Annotate(Status::NoSpace("disk full"), "writing x");
  EXPECT_EQ(s.code(), Status::Code::kNoSpace);
  EXPECT_EQ(s.message(), "writing x: disk full");
}

}  // namespace
}  // namespace cairn

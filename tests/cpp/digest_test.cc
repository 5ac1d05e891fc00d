#include "util/digest.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace cairn {
namespace {

// Reference values from an independent XXH3-128 implementation
// (python-xxhash's xxh3_128_hexdigest).
TEST(DigestTest, MatchesReferenceXxh3_128) {
  EXPECT_EQ(Hasher().HexDigest(), "99aa06d3014798d86001c324468d497f");
  Hasher abc;
  abc.Update("abc", 3);
  EXPECT_EQ(abc.HexDigest(), "06b05ab6733a618578af5f94892f3950");
}

TEST(DigestTest, SegmentedDigestCoversCountAndLengths) {
  // = xxh3_128(pack("<QQ", 1, 3) + b"abc")
  ByteView abc[] = {{"abc", 3}};
  EXPECT_EQ(DigestOf(abc), "a2a02cde83769a5f8773483a785b5901");
  ByteView split[] = {{"a", 1}, {"bc", 2}};
  ByteView with_empty[] = {{"abc", 3}, {"", 0}};
  EXPECT_NE(DigestOf(split), DigestOf(abc));
  EXPECT_NE(DigestOf(with_empty), DigestOf(abc));
  EXPECT_NE(DigestOf({}), Hasher().HexDigest());
}

TEST(DigestTest, StreamingDoesNotDependOnChunking) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data += static_cast<char>(i * 7);
  Hasher whole;
  whole.Update(data.data(), data.size());
  for (size_t chunk : {1u, 63u, 4096u, 99999u}) {
    Hasher pieces;
    for (size_t pos = 0; pos < data.size(); pos += chunk) {
      pieces.Update(data.data() + pos, std::min(chunk, data.size() - pos));
    }
    EXPECT_EQ(pieces.HexDigest(), whole.HexDigest()) << "chunk " << chunk;
  }
}

TEST(DigestTest, IsDigestAcceptsOnlyLowercaseHexOfTheRightLength) {
  EXPECT_TRUE(IsDigest(Hasher().HexDigest()));
  EXPECT_FALSE(IsDigest(""));
  EXPECT_FALSE(IsDigest("99AA06D3014798D86001C324468D497F"));
  EXPECT_FALSE(IsDigest("../../../../etc/passwd0000000000"));
  EXPECT_FALSE(IsDigest("99aa06d3014798d86001c324468d497"));
}

}  // namespace
}  // namespace cairn

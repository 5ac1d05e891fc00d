#include "util/digest.h"

#include <xxhash.h>
#ifdef CAIRN_HAVE_XXH3_DISPATCH
#include <xxh_x86dispatch.h>
#endif

#include <cstdint>

#include "util/check.h"

namespace cairn {

Hasher::Hasher() : state_(XXH3_createState()) {
  CAIRN_CHECK(state_ != nullptr);
  CAIRN_CHECK(XXH3_128bits_reset(state_) == XXH_OK);
}

Hasher::~Hasher() { XXH3_freeState(state_); }

void Hasher::Update(const void* data, size_t size) {
  if (size == 0) return;
#ifdef CAIRN_HAVE_XXH3_DISPATCH
  // The same hash, with the widest vector unit this CPU has.
  CAIRN_CHECK(XXH3_128bits_update_dispatch(state_, data, size) == XXH_OK);
#else
  CAIRN_CHECK(XXH3_128bits_update(state_, data, size) == XXH_OK);
#endif
}

void Hasher::UpdateU64(uint64_t value) {
  unsigned char le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(value >> (8 * i));
  Update(le, sizeof(le));
}

std::string Hasher::HexDigest() const {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state_));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(kDigestHexSize, '0');
  for (size_t i = 0; i < sizeof(canonical.digest); ++i) {
    hex[2 * i] = kHex[canonical.digest[i] >> 4];
    hex[2 * i + 1] = kHex[canonical.digest[i] & 0xf];
  }
  return hex;
}

std::string DigestOf(std::span<const ByteView> segments) {
  Hasher hasher;
  hasher.UpdateU64(segments.size());
  for (const ByteView& s : segments) hasher.UpdateU64(s.size);
  for (const ByteView& s : segments) hasher.Update(s.data, s.size);
  return hasher.HexDigest();
}

bool IsDigest(std::string_view s) {
  if (s.size() != kDigestHexSize) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace cairn

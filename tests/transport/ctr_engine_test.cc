#include "transport/ctr_engine.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace syncd::transport {
namespace {

using Bytes = std::vector<unsigned char>;

Bytes Hex(const std::string& hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<unsigned char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

const EVP_CIPHER* Ctr(size_t key_len) {
  return key_len == 16 ? EVP_aes_128_ctr() : key_len == 24 ? EVP_aes_192_ctr() : EVP_aes_256_ctr();
}

// Encrypts `data` as libssh2 does: EVP_CipherInit once, then EVP_Cipher on pieces of `step`
// bytes (0: random sizes). Reports whether an engine (not a provider) served it.
Bytes Encrypt(const Bytes& key, const Bytes& iv, const Bytes& data, size_t step, bool* by_engine,
              int enc = 1) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                       EVP_CIPHER_CTX_free);
  EXPECT_EQ(EVP_CipherInit(ctx.get(), Ctr(key.size()), key.data(), iv.data(), enc), 1);
  *by_engine = EVP_CIPHER_get0_provider(EVP_CIPHER_CTX_get0_cipher(ctx.get())) == nullptr;
  Bytes out(data.size());
  std::mt19937 rng(static_cast<uint32_t>(data.size()));
  for (size_t at = 0; at < data.size();) {
    size_t n = std::min(data.size() - at, step ? step : 1 + rng() % 5000);
    // 1 from an engine, the byte count from a provider; -1 or 0 is a failure.
    EXPECT_GT(EVP_Cipher(ctx.get(), out.data() + at, data.data() + at, static_cast<unsigned>(n)), 0);
    at += n;
  }
  return out;
}

// NIST SP 800-38A, F.5.1 (CTR-AES128.Encrypt): the counter also carries across a byte.
TEST(CtrEngineTest, KnownAnswer) {
  ASSERT_TRUE(UseCtrEngine(true));
  bool engine = false;
  Bytes got = Encrypt(Hex("2b7e151628aed2a6abf7158809cf4f3c"), Hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"),
                      Hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                          "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"),
                      16, &engine);
  EXPECT_TRUE(engine) << "EVP_aes_128_ctr() is still served by the provider";
  EXPECT_EQ(got, Hex("874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"
                     "5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee"));
}

// Against OpenSSL's own AES-CTR, for each key size, in libssh2's 16-byte steps and in pieces of
// any size, with a counter about to carry into its upper half and one about to wrap around.
TEST(CtrEngineTest, SameBytesAsOpenSslsOwn) {
  std::mt19937_64 rng(42);
  Bytes data(300000);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  for (size_t key_len : {16, 24, 32}) {
    for (const char* iv_hex : {"000102030405060708090a0b0c0d0e0f", "0102030405060708fffffffffffffff0",
                               "fffffffffffffffffffffffffffffffe"}) {
      Bytes key(key_len);
      for (auto& b : key) b = static_cast<unsigned char>(rng());
      Bytes iv = Hex(iv_hex);
      bool engine = true;
      ASSERT_TRUE(UseCtrEngine(false));
      Bytes want = Encrypt(key, iv, data, data.size(), &engine);
      ASSERT_FALSE(engine);
      ASSERT_TRUE(UseCtrEngine(true));
      EXPECT_EQ(Encrypt(key, iv, data, 16, &engine), want) << key_len << " " << iv_hex;
      EXPECT_TRUE(engine);
      EXPECT_EQ(Encrypt(key, iv, data, 0, &engine), want) << key_len << " " << iv_hex;
      EXPECT_EQ(Encrypt(key, iv, want, 16, &engine, /*enc=*/0), data) << "decrypting";
    }
  }
}

}  // namespace
}  // namespace syncd::transport

#include "transport/ctr_engine.h"

// The ENGINE interface is deprecated in OpenSSL 3 but is the one way to stand in for a cipher
// that a library (libssh2) fetches by itself.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/evp.h>

#include <endian.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>

namespace syncd::transport {
namespace {

constexpr int kNids[] = {NID_aes_128_ctr, NID_aes_192_ctr, NID_aes_256_ctr};
constexpr size_t kBlock = 16;
constexpr size_t kStreamBytes = 4096;

// The state OpenSSL keeps per context (zeroed when allocated).
struct Ctr {
  EVP_CIPHER_CTX* ecb;  // AES-ECB with the context's key: turns counters into keystream.
  uint64_t hi, lo;      // The next counter block: a 128-bit big-endian integer (RFC 4344).
  unsigned char blocks[kStreamBytes];  // Counter blocks, then encrypted in place.
  size_t used;                         // Bytes of `blocks` consumed; kStreamBytes: none left.
};

Ctr* StateOf(EVP_CIPHER_CTX* ctx) { return static_cast<Ctr*>(EVP_CIPHER_CTX_get_cipher_data(ctx)); }

const char* EcbName(int key_len) {
  return key_len == 16 ? "AES-128-ECB" : key_len == 24 ? "AES-192-ECB" : "AES-256-ECB";
}

int Init(EVP_CIPHER_CTX* ctx, const unsigned char* key, const unsigned char* iv, int) {
  Ctr* s = StateOf(ctx);
  if (key) {
    if (!s->ecb && !(s->ecb = EVP_CIPHER_CTX_new())) return 0;
    // ECB is not served by this engine: this is OpenSSL's own AES (AES-NI where there is one).
    EVP_CIPHER* ecb = EVP_CIPHER_fetch(nullptr, EcbName(EVP_CIPHER_CTX_get_key_length(ctx)), nullptr);
    int ok = ecb && EVP_EncryptInit_ex(s->ecb, ecb, nullptr, key, nullptr) == 1;
    EVP_CIPHER_free(ecb);
    if (!ok) return 0;
    EVP_CIPHER_CTX_set_padding(s->ecb, 0);
  }
  if (iv) {
    std::memcpy(&s->hi, iv, 8);
    std::memcpy(&s->lo, iv + 8, 8);
    s->hi = be64toh(s->hi);
    s->lo = be64toh(s->lo);
    s->used = kStreamBytes;
  }
  return 1;
}

bool Refill(Ctr* s) {
  for (size_t at = 0; at < kStreamBytes; at += kBlock) {
    uint64_t hi = htobe64(s->hi), lo = htobe64(s->lo);
    std::memcpy(s->blocks + at, &hi, 8);
    std::memcpy(s->blocks + at + 8, &lo, 8);
    if (++s->lo == 0) ++s->hi;
  }
  int n = 0;
  if (EVP_EncryptUpdate(s->ecb, s->blocks, &n, s->blocks, static_cast<int>(kStreamBytes)) != 1 ||
      n != static_cast<int>(kStreamBytes))
    return false;
  s->used = 0;
  return true;
}

int DoCipher(EVP_CIPHER_CTX* ctx, unsigned char* out, const unsigned char* in, size_t len) {
  Ctr* s = StateOf(ctx);
  if (!s->ecb) return 0;
  while (len > 0) {
    if (s->used == kStreamBytes && !Refill(s)) return 0;
    size_t n = std::min(len, kStreamBytes - s->used);
    const unsigned char* k = s->blocks + s->used;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {  // libssh2 asks for 16 bytes at a time.
      uint64_t a, b;
      std::memcpy(&a, in + i, 8);
      std::memcpy(&b, k + i, 8);
      a ^= b;
      std::memcpy(out + i, &a, 8);
    }
    for (; i < n; ++i) out[i] = in[i] ^ k[i];
    s->used += n;
    out += n;
    in += n;
    len -= n;
  }
  return 1;
}

int Cleanup(EVP_CIPHER_CTX* ctx) {
  if (Ctr* s = StateOf(ctx)) {
    EVP_CIPHER_CTX_free(s->ecb);
    OPENSSL_cleanse(s, sizeof *s);
  }
  return 1;
}

// A copy would share the ECB context: refused (libssh2 never copies one).
int Ctrl(EVP_CIPHER_CTX*, int type, int, void*) { return type == EVP_CTRL_COPY ? 0 : -1; }

EVP_CIPHER* MakeCipher(int nid, int key_len) {
  EVP_CIPHER* c = EVP_CIPHER_meth_new(nid, 1, key_len);
  if (!c) return nullptr;
  if (EVP_CIPHER_meth_set_iv_length(c, kBlock) != 1 ||
      EVP_CIPHER_meth_set_flags(c, EVP_CIPH_CTR_MODE | EVP_CIPH_CUSTOM_COPY) != 1 ||
      EVP_CIPHER_meth_set_init(c, Init) != 1 || EVP_CIPHER_meth_set_do_cipher(c, DoCipher) != 1 ||
      EVP_CIPHER_meth_set_cleanup(c, Cleanup) != 1 || EVP_CIPHER_meth_set_ctrl(c, Ctrl) != 1 ||
      EVP_CIPHER_meth_set_impl_ctx_size(c, sizeof(Ctr)) != 1) {
    EVP_CIPHER_meth_free(c);
    return nullptr;
  }
  return c;
}

const EVP_CIPHER* g_ciphers[3];

int Ciphers(ENGINE*, const EVP_CIPHER** cipher, const int** nids, int nid) {
  if (!cipher) {
    *nids = kNids;
    return static_cast<int>(std::size(kNids));
  }
  for (size_t i = 0; i < std::size(kNids); ++i)
    if (kNids[i] == nid) return (*cipher = g_ciphers[i]) != nullptr;
  *cipher = nullptr;
  return 0;
}

ENGINE* Engine() {
  static ENGINE* engine = [] {
    g_ciphers[0] = MakeCipher(NID_aes_128_ctr, 16);
    g_ciphers[1] = MakeCipher(NID_aes_192_ctr, 24);
    g_ciphers[2] = MakeCipher(NID_aes_256_ctr, 32);
    if (!g_ciphers[0] || !g_ciphers[1] || !g_ciphers[2]) return static_cast<ENGINE*>(nullptr);
    ENGINE* e = ENGINE_new();
    if (!e) return e;
    if (ENGINE_set_id(e, "syncd-ctr") != 1 || ENGINE_set_name(e, "AES-CTR, keystream in bulk") != 1 ||
        ENGINE_set_ciphers(e, Ciphers) != 1 || ENGINE_init(e) != 1) {
      ENGINE_free(e);
      return static_cast<ENGINE*>(nullptr);
    }
    return e;
  }();
  return engine;
}

}  // namespace

bool UseCtrEngine(bool on) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  ENGINE* e = Engine();
  if (!e) return false;
  if (!on) {
    ENGINE_unregister_ciphers(e);
    return true;
  }
  return ENGINE_set_default_ciphers(e) == 1;
}

}  // namespace syncd::transport

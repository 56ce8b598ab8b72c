// libssh2 1.10 encrypts an SSH packet one 16-byte block per EVP_Cipher() call, and each call
// through OpenSSL 3's provider layer costs tens of nanoseconds: on a bulk copy that was most of
// the client's CPU. This OpenSSL engine, registered in this process for AES-CTR, serves those
// calls from keystream made 4 KiB at a time with OpenSSL's AES. Same cipher, same bytes on the
// wire; only the way to the AES instructions is shorter.
#pragma once

namespace syncd::transport {

// Registers the engine as this process's AES-128/192/256-CTR (once; later calls only switch it
// on or off). Returns false, and leaves OpenSSL as it was, if OpenSSL refuses it.
bool UseCtrEngine(bool on = true);

}  // namespace syncd::transport

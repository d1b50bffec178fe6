// isa-l (Intel Storage Acceleration Library): CRC32C and igzip. Found through pkg-config (libisal.pc).
#include <isa-l.h>

// libdeflate: whole-buffer inflate. Found through pkg-config (libdeflate.pc).
#include <libdeflate.h>

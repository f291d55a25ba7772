/* A stand-in for Windows' bcryptprimitives.dll under Wine 8 (Debian 12), which lacks it.
 * Rust's standard library (1.78 and later) imports ProcessPrng from it for random hash keys, so
 * no Rust program for Windows starts under that Wine without one. Tests only: real Windows 10
 * and later have the DLL. ProcessPrng fills the buffer from RtlGenRandom (advapi32
 * SystemFunction036), which Wine implements; it never fails on Windows, nor here. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

#pragma once
// Symbol visibility: the library is built with hidden visibility; public API carries VOXCORE_API.
#if defined(_WIN32)
#define VOXCORE_API __declspec(dllexport)
#else
#define VOXCORE_API __attribute__((visibility("default")))
#endif

/* Opt-in: let MKL run its fast kernels on AMD CPUs (see docs/performance.md).
 *
 * MKL chooses its code path with a vendor check before it looks at the CPU's instruction
 * sets: on AMD CPUs it runs a generic path (MKL_VERBOSE=1 reports "Intel(R) Architecture
 * processors", also with this library, whose answer the banner does not use). PyTorch's
 * float32 mm/bmm call MKL, so every matrix product of the RIM does; nn.LSTM's CPU kernel
 * calls oneDNN, which has no such check. Preloaded, this function answers the vendor
 * check, and MKL picks its kernels by the instruction sets the CPU reports.
 *
 *   make mkl-on-amd                                   # builds build/libmkl_on_amd.so
 *   LD_PRELOAD=$PWD/build/libmkl_on_amd.so python scripts/benchmarks/benchmark.py
 *   python scripts/contrib/check_mkl_on_amd.py                # same results? how much faster?
 *
 * Linux x86-64 with PyTorch's MKL build only. Intel does not support this; the products
 * differ from the generic path's in rounding only (docs/performance.md gives the measured difference).
 */
int mkl_serv_intel_cpu_true(void) { return 1; }

#include "ops/cpu/onednn/gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <omp.h>

#include "engine/error.h"

namespace tpp::ops::cpu::onednn {

namespace {

// oneDNN's sgemm opens a parallel region over omp_get_max_threads() threads
// unless it runs inside one already; for a product meant for the calling
// thread alone, that count is set to 1 for the call.
class CallingThreadOnly {
 public:
  CallingThreadOnly() : saved_(omp_in_parallel() ? 0 : omp_get_max_threads()) {
    if (saved_ > 1) omp_set_num_threads(1);
  }
  ~CallingThreadOnly() {
    if (saved_ > 1) omp_set_num_threads(saved_);
  }
  CallingThreadOnly(const CallingThreadOnly&) = delete;
  CallingThreadOnly& operator=(const CallingThreadOnly&) = delete;

 private:
  int saved_;
};

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const CallingThreadOnly one_thread;
  const dnnl_status_t status =
      dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  TPP_CHECK(status == dnnl_success, "matmul (oneDNN sgemm) of [{}, {}] x [{}, {}]{}{}: oneDNN {}", m, k, k, n,
            trans_a ? ", A transposed" : "", trans_b ? ", B transposed" : "", dnnl_status2str(status));
}

}  // namespace tpp::ops::cpu::onednn

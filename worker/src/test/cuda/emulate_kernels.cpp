// kernels.cu on the host (emulation.h), each kernel launched with the grid and block that
// CudaBackend uses, against plain loops in double precision. run-emulated.sh builds and runs it;
// CudaKernelEmulationTest runs that where g++ is installed. Prints one line per check, exit 0 when
// all pass.
#include "emulation.h"

#include <cstdio>
#include <random>
#include <string>

// kernels.cu with `extern __shared__ float smem[];` turned into the emulator's buffer.
#include KERNELS_SOURCE

namespace {

int failures = 0;

std::vector<float> randoms(unsigned seed, size_t n, double std, double mean = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> d(mean, std);
  std::vector<float> v(n);
  for (auto& x : v) {
    x = static_cast<float>(d(rng));
  }
  return v;
}

// Round to nearest even, written independently of kernels.cu (the Java Bf16.round algorithm).
unsigned short to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  if ((b & 0x7fffffffu) > 0x7f800000u) return static_cast<unsigned short>((b >> 16) | 0x40);
  return static_cast<unsigned short>((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}
float from_bf16(unsigned short h) {
  uint32_t b = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
unsigned short to_f16(float f) {
  _Float16 h = static_cast<_Float16>(f);
  unsigned short s;
  std::memcpy(&s, &h, 2);
  return s;
}
float from_f16(unsigned short s) {
  _Float16 h;
  std::memcpy(&h, &s, 2);
  return static_cast<float>(h);
}

// A weight as a device would hold it: raw bytes of dtype, plus its float values for the reference.
struct Weight {
  int dtype;
  std::vector<unsigned char> bytes;
  std::vector<float> values;
};

Weight weight(int dtype, unsigned seed, size_t n, double std, double mean = 0) {
  std::vector<float> v = randoms(seed, n, std, mean);
  Weight w{dtype, {}, {}};
  w.bytes.resize(n * (dtype == DT_F32 ? 4 : 2));
  for (size_t i = 0; i < n; i++) {
    if (dtype == DT_F32) {
      std::memcpy(&w.bytes[i * 4], &v[i], 4);
    } else {
      unsigned short s = dtype == DT_BF16 ? to_bf16(v[i]) : to_f16(v[i]);
      v[i] = dtype == DT_BF16 ? from_bf16(s) : from_f16(s);
      std::memcpy(&w.bytes[i * 2], &s, 2);
    }
  }
  w.values = v;
  return w;
}

const char* dtype_name(int d) { return d == DT_F32 ? "F32" : d == DT_BF16 ? "BF16" : "F16"; }

bool close_all(const std::vector<double>& ref, const float* got, size_t n, double atol,
               double rtol, const std::string& what) {
  for (size_t i = 0; i < n; i++) {
    double diff = std::fabs(ref[i] - got[i]);
    if (!(diff <= atol + rtol * std::fabs(ref[i]))) {
      std::printf("FAIL %s: element %zu is %.7g, reference %.7g\n", what.c_str(), i, got[i],
                  ref[i]);
      failures++;
      return false;
    }
  }
  return true;
}

void pass(const std::string& what) { std::printf("PASS %s\n", what.c_str()); }

// ---- linear (both paths, as CudaBackend.linear picks them) ----------------------------------
void check_linear() {
  int shapes[][2] = {{64, 64}, {67, 33}, {200, 130}, {16, 1}};
  int counts[] = {1, 3, 8, 9, 65};
  unsigned seed = 1;
  for (int dt : {DT_F32, DT_BF16, DT_F16}) {
    bool ok = true;
    for (auto& s : shapes) {
      int in = s[0], out = s[1];
      Weight w = weight(dt, seed++, static_cast<size_t>(out) * in, 0.5);
      Weight b = weight(dt, seed++, out, 0.5);
      for (int n : counts) {
        std::vector<float> x = randoms(seed++, static_cast<size_t>(n) * in, 1.0);
        for (bool withBias : {true, false}) {
          std::vector<float> o(static_cast<size_t>(n + 2) * out, -7.0f);
          const void* bias = withBias ? b.bytes.data() : nullptr;
          bool gemv = n <= GEMV_MAX_TOKENS;
          const float* xp = x.data();
          const void* wp = w.bytes.data();
          float* op = o.data();
          if (gemv) {
            launch(dim3{static_cast<unsigned>((out + 7) / 8), 1, 1}, 256, 0, [=] {
              if (dt == DT_F32) linear_gemv_f32(xp, wp, bias, dt, n, in, out, op);
              if (dt == DT_BF16) linear_gemv_bf16(xp, wp, bias, dt, n, in, out, op);
              if (dt == DT_F16) linear_gemv_f16(xp, wp, bias, dt, n, in, out, op);
            });
          } else {
            launch(dim3{static_cast<unsigned>((out + 63) / 64), static_cast<unsigned>((n + 63) / 64),
                        1},
                   256, 0, [=] {
                     if (dt == DT_F32) linear_f32(xp, wp, bias, dt, n, in, out, op);
                     if (dt == DT_BF16) linear_bf16(xp, wp, bias, dt, n, in, out, op);
                     if (dt == DT_F16) linear_f16(xp, wp, bias, dt, n, in, out, op);
                   });
          }
          std::vector<double> ref(static_cast<size_t>(n + 2) * out, -7.0);
          for (int t = 0; t < n; t++) {
            for (int r = 0; r < out; r++) {
              double acc = withBias ? b.values[r] : 0.0;
              for (int c = 0; c < in; c++) acc += static_cast<double>(x[t * in + c]) * w.values[r * in + c];
              ref[static_cast<size_t>(t) * out + r] = acc;
            }
          }
          ok &= close_all(ref, o.data(), ref.size(), 1e-4, 1e-4,
                          std::string("linear ") + dtype_name(dt) + " " + std::to_string(in) + "->" +
                              std::to_string(out) + " n=" + std::to_string(n) +
                              (withBias ? " +bias" : ""));
          if (!ok) return;
        }
      }
    }
    pass(std::string("linear ") + dtype_name(dt) + " (gemv for n <= 8, tiles above)");
  }
}

// ---- layer_norm, embed, activation, add, gather ----------------------------------------------
void check_small_ops() {
  for (int dt : {DT_F32, DT_BF16, DT_F16}) {
    bool ok = true;
    for (int d : {64, 67, 768}) {
      int n = 5;
      std::vector<float> x = randoms(d, static_cast<size_t>(n) * d, 2.0, 0.7);
      Weight g = weight(dt, 11, d, 0.1, 1.0);
      Weight b = weight(dt, 12, d, 0.1);
      std::vector<float> o(static_cast<size_t>(n) * d);
      const float* xp = x.data();
      float* op = o.data();
      const void* gp = g.bytes.data();
      const void* bp = b.bytes.data();
      launch(dim3{static_cast<unsigned>(n), 1, 1}, 256, 0,
             [=] { layer_norm(xp, d, gp, dt, bp, dt, 1e-5f, op); });
      std::vector<double> ref(o.size());
      for (int t = 0; t < n; t++) {
        double mean = 0, var = 0;
        for (int c = 0; c < d; c++) mean += x[t * d + c];
        mean /= d;
        for (int c = 0; c < d; c++) var += (x[t * d + c] - mean) * (x[t * d + c] - mean);
        var /= d;
        for (int c = 0; c < d; c++)
          ref[t * d + c] = (x[t * d + c] - mean) / std::sqrt(var + 1e-5) * g.values[c] + b.values[c];
      }
      ok &= close_all(ref, o.data(), ref.size(), 1e-5, 1e-4,
                      std::string("layer_norm ") + dtype_name(dt) + " d=" + std::to_string(d));
    }
    if (ok) pass(std::string("layer_norm ") + dtype_name(dt));

    Weight wte = weight(dt, 3, 50 * 24, 1.0);
    Weight wpe = weight(dt, 4, 16 * 24, 1.0);
    std::vector<int> ids = {7, 0, 49, 7};
    std::vector<int> pos = {3, 4, 5, 6};
    std::vector<float> o(4 * 24);
    const int* ip = ids.data();
    const int* pp = pos.data();
    const void* tp = wte.bytes.data();
    const void* ep = wpe.bytes.data();
    float* op = o.data();
    launch(dim3{4, 1, 1}, 256, 0, [=] { embed(ip, pp, tp, dt, ep, dt, 24, op); });
    std::vector<double> ref(o.size());
    for (int t = 0; t < 4; t++)
      for (int c = 0; c < 24; c++)
        ref[t * 24 + c] = static_cast<double>(wte.values[ids[t] * 24 + c]) + wpe.values[pos[t] * 24 + c];
    if (close_all(ref, o.data(), ref.size(), 1e-6, 0, std::string("embed ") + dtype_name(dt)))
      pass(std::string("embed ") + dtype_name(dt));
  }

  for (int kind : {ACT_GELU_TANH, ACT_GELU_ERF, ACT_RELU}) {
    size_t len = 3000;
    std::vector<float> x = randoms(5, len + 100, 3.0);
    std::vector<float> y = x;
    float* yp = y.data();
    launch(dim3{static_cast<unsigned>((len + 255) / 256), 1, 1}, 256, 0,
           [=] { activation(yp, static_cast<long long>(len), kind); });
    std::vector<double> ref(len + 100);
    for (size_t i = 0; i < len + 100; i++) {
      double v = x[i];
      if (i >= len) ref[i] = v;  // beyond len: untouched
      else if (kind == ACT_GELU_TANH)
        ref[i] = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
      else if (kind == ACT_GELU_ERF) ref[i] = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
      else ref[i] = std::max(0.0, v);
    }
    if (close_all(ref, y.data(), ref.size(), 1e-6, 1e-5, "activation " + std::to_string(kind)))
      pass("activation " + std::to_string(kind));
  }

  {
    int n = 4, d = 37;
    std::vector<float> x = randoms(1, n * d, 1), y = randoms(2, n * d, 1);
    std::vector<float> a = x;
    float* ap = a.data();
    const float* yp = y.data();
    long long len = static_cast<long long>(n - 1) * d;  // row 3 stays x
    launch(dim3{1, 1, 1}, 256, 0, [=] { add_in_place(ap, yp, len); });
    std::vector<int> rows = {3, 0, 3};
    std::vector<float> g(3 * d);
    const int* rp = rows.data();
    float* gp = g.data();
    launch(dim3{3, 1, 1}, 256, 0, [=] { gather_rows(ap, rp, d, gp); });
    std::vector<double> ref(3 * d);
    for (int i = 0; i < 3; i++)
      for (int c = 0; c < d; c++) {
        int r = rows[i];
        ref[i * d + c] = r < n - 1 ? static_cast<double>(x[r * d + c] + y[r * d + c]) : x[r * d + c];
      }
    if (close_all(ref, g.data(), ref.size(), 0, 0, "add_in_place + gather_rows"))
      pass("add_in_place + gather_rows");
  }
}

// ---- kv_store + attention, with CudaBackend's grouping ---------------------------------------
int attention_smem(int tokens, int heads, int hd) {
  return 4 * (2 * tokens * heads * hd + ATT_TJ * (hd + 1) + tokens * heads * ATT_TJ + 3 * tokens * heads);
}

template <typename KV>
void check_attention(int nHead, int kvHeads, int hd, int headsPerBlock, const char* kvName) {
  bool bf16 = sizeof(KV) == 2;
  int blockSize = 4, numBlocks = 40;
  std::vector<std::vector<int>> tables = {{5, 1, 7, 2, 0, 11, 12, 13, 14, 15},
                                          {3, 6, 4, 8, 9, 16, 17, 18, 19, 20},
                                          {39, 38, 37, 36}};
  int steps[][3][2] = {{{0, 21}, {0, 5}, {0, 9}},
                       {{21, 9}, {5, 1}, {9, 4}},
                       {{30, 1}, {6, 1}, {13, 1}},
                       {{31, 1}, {7, 20}, {14, 1}}};
  int qkvDim = (nHead + 2 * kvHeads) * hd;
  int kvDim = kvHeads * hd;
  int outDim = nHead * hd;
  int groupHeads = nHead / kvHeads;
  float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  size_t slots = static_cast<size_t>(numBlocks) * blockSize;
  std::vector<KV> kc(slots * kvDim), vc(slots * kvDim);
  std::vector<float> refK(slots * kvDim), refV(slots * kvDim);  // what the cache should hold
  std::vector<int> tableStart, flat;
  for (auto& t : tables) {
    tableStart.push_back(static_cast<int>(flat.size()));
    flat.insert(flat.end(), t.begin(), t.end());
  }
  auto qOff = [&](int h) { return kvHeads == 1 ? h * hd : h * 3 * hd; };
  auto kOff = [&](int kh) { return kvHeads == 1 ? nHead * hd : kh * 3 * hd + hd; };
  auto vOff = [&](int kh) { return kvHeads == 1 ? nHead * hd + hd : kh * 3 * hd + 2 * hd; };
  unsigned seed = 100;
  std::string what = std::string("attention nHead=") + std::to_string(nHead) + " kvHeads=" +
                     std::to_string(kvHeads) + " hd=" + std::to_string(hd) + " headsPerBlock=" +
                     std::to_string(headsPerBlock) + " " + kvName;
  for (auto& st : steps) {
    std::vector<int> pos, seq, slot;
    for (int s = 0; s < 3; s++)
      for (int j = 0; j < st[s][1]; j++) {
        int p = st[s][0] + j;
        pos.push_back(p);
        seq.push_back(s);
        slot.push_back(tables[s][p / blockSize] * blockSize + p % blockSize);
      }
    int n = static_cast<int>(pos.size());
    std::vector<float> qkv = randoms(seed++, static_cast<size_t>(n) * qkvDim, 1.0);
    // As CudaBackend.groupTokens: runs of one sequence, at most groupMax tokens.
    int groupMax = std::max(1, 64 / headsPerBlock);
    std::vector<int> first, count;
    int largest = 0;
    for (int t = 0; t < n; t++) {
      if (!first.empty() && seq[first.back()] == seq[t] && count.back() < groupMax) count.back()++;
      else {
        first.push_back(t);
        count.push_back(1);
      }
      largest = std::max(largest, count.back());
    }
    std::vector<float> out(static_cast<size_t>(n) * outDim, -7.0f);
    const float* qp = qkv.data();
    const int* sp = slot.data();
    KV* kp = kc.data();
    KV* vp = vc.data();
    launch(dim3{static_cast<unsigned>(n), 1, 1}, 128, 0, [=] {
      if constexpr (sizeof(KV) == 4) kv_store_f32(qp, sp, qkvDim, nHead, kvHeads, hd, kp, vp);
      else kv_store_bf16(qp, sp, qkvDim, nHead, kvHeads, hd, kp, vp);
    });
    const int* pp = pos.data();
    const int* seqp = seq.data();
    const int* fp = first.data();
    const int* cp = count.data();
    const int* bt = flat.data();
    const int* ts = tableStart.data();
    float* op = out.data();
    unsigned chunks = static_cast<unsigned>((groupHeads + headsPerBlock - 1) / headsPerBlock);
    launch(dim3{static_cast<unsigned>(first.size()), static_cast<unsigned>(kvHeads), chunks}, 256,
           attention_smem(largest, headsPerBlock, hd), [=] {
             if constexpr (sizeof(KV) == 4)
               attention_f32(qp, pp, seqp, fp, cp, bt, ts, blockSize, qkvDim, nHead, kvHeads, hd,
                             headsPerBlock, scale, kp, vp, op);
             else
               attention_bf16(qp, pp, seqp, fp, cp, bt, ts, blockSize, qkvDim, nHead, kvHeads, hd,
                              headsPerBlock, scale, kp, vp, op);
           });
    // Reference: store (rounded), then plain causal softmax attention in double.
    for (int t = 0; t < n; t++)
      for (int kh = 0; kh < kvHeads; kh++)
        for (int c = 0; c < hd; c++) {
          float k = qkv[t * qkvDim + kOff(kh) + c], v = qkv[t * qkvDim + vOff(kh) + c];
          size_t at = static_cast<size_t>(slot[t]) * kvDim + kh * hd + c;
          refK[at] = bf16 ? from_bf16(to_bf16(k)) : k;
          refV[at] = bf16 ? from_bf16(to_bf16(v)) : v;
        }
    std::vector<double> ref(out.size(), -7.0);
    for (int t = 0; t < n; t++)
      for (int h = 0; h < nHead; h++) {
        int kh = kvHeads == 1 ? 0 : h;
        int len = pos[t] + 1;
        std::vector<double> sc(len);
        double mx = -1e300;
        for (int j = 0; j < len; j++) {
          size_t s = static_cast<size_t>(tables[seq[t]][j / blockSize]) * blockSize + j % blockSize;
          double dot = 0;
          for (int c = 0; c < hd; c++) dot += static_cast<double>(qkv[t * qkvDim + qOff(h) + c]) * refK[s * kvDim + kh * hd + c];
          sc[j] = dot * scale;
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (int j = 0; j < len; j++) sum += (sc[j] = std::exp(sc[j] - mx));
        for (int c = 0; c < hd; c++) {
          double acc = 0;
          for (int j = 0; j < len; j++) {
            size_t s = static_cast<size_t>(tables[seq[t]][j / blockSize]) * blockSize + j % blockSize;
            acc += sc[j] * refV[s * kvDim + kh * hd + c];
          }
          ref[static_cast<size_t>(t) * outDim + h * hd + c] = acc / sum;
        }
      }
    if (!close_all(ref, out.data(), ref.size(), 1e-5, 1e-4, what)) return;
  }
  // The cache holds exactly the rounded K and V of every token stored.
  for (size_t i = 0; i < kc.size(); i++) {
    float k = bf16 ? from_bf16(static_cast<unsigned short>(kc[i])) : static_cast<float>(kc[i]);
    float v = bf16 ? from_bf16(static_cast<unsigned short>(vc[i])) : static_cast<float>(vc[i]);
    if (k != refK[i] || v != refV[i]) {
      std::printf("FAIL %s: cache element %zu holds %g/%g, expected %g/%g\n", what.c_str(), i, k, v,
                  refK[i], refV[i]);
      failures++;
      return;
    }
  }
  pass(what);
}

}  // namespace

int main() {
  check_linear();
  check_small_ops();
  for (int pass16 = 0; pass16 < 2; pass16++) {
    // {nHead, kvHeads, hd, headsPerBlock}: MQA, MHA, an odd head width, a head group split over
    // two blocks (3 + 1 heads), StarCoder-like 48 heads of 128 with one token per group.
    int cases[][4] = {{4, 1, 16, 4}, {4, 4, 16, 1}, {4, 1, 23, 4}, {4, 1, 16, 3}, {48, 1, 128, 48}};
    for (auto& c : cases) {
      if (pass16 == 0) check_attention<float>(c[0], c[1], c[2], c[3], "fp32 KV");
      else check_attention<unsigned short>(c[0], c[1], c[2], c[3], "bf16 KV");
    }
  }
  std::printf(failures == 0 ? "all emulated kernel checks passed\n" : "%d emulated checks FAILED\n",
              failures);
  return failures == 0 ? 0 : 1;
}

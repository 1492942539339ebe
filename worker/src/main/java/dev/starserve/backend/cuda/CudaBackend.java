package dev.starserve.backend.cuda;

import dev.starserve.backend.AttentionShape;
import dev.starserve.backend.Backend;
import dev.starserve.backend.BatchLayout;
import dev.starserve.backend.Buffer;
import dev.starserve.backend.KvCache;
import dev.starserve.backend.KvDType;
import dev.starserve.backend.Matrix;
import dev.starserve.checkpoint.DType;
import dev.starserve.checkpoint.TensorView;
import dev.starserve.model.Activation;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * The backend on one NVIDIA GPU through JCuda's driver API: device 0's primary context, the legacy
 * default stream, and the PTX kernels of {@code kernels.ptx} (source: {@code
 * worker/src/main/cuda/kernels.cu}).
 *
 * <p>Weights are copied to device memory once, at upload, straight from the mapped checkpoint (no
 * heap copy); activations and the K/V block pool live in device memory. {@link #readRows} copies
 * logits back to the host, where sampling stays.
 *
 * <p>NOTE: every operation runs on the legacy default stream, so kernels, the small synchronous
 * uploads of each step's token tables and the final copy back are ordered without events, and a
 * per-step table on the device is never overwritten while a kernel still reads it.
 *
 * <p>Int8 weights are not supported ({@link Backend#uploadLinear(TensorView,
 * dev.starserve.backend.Quantization)} throws). Not thread-safe, like every backend: one engine
 * loop calls it (the context is made current on the calling thread at every entry).
 */
public final class CudaBackend implements Backend {
  /** The PTX resource, next to this class. */
  static final String PTX_RESOURCE = "kernels.ptx";

  private static final int LINEAR_TILE = 64; // kernels.cu LIN_BM = LIN_BN
  static final int GEMV_MAX_TOKENS = 8; // kernels.cu GEMV_MAX_TOKENS
  private static final int DEFAULT_SMEM = 48 * 1024; // dynamic shared memory without opting in
  private static final long COPY_CHUNK = 1L << 30; // asByteBuffer needs < 2 GiB

  private static final Cleaner CLEANER = Cleaner.create();

  private final CUdevice device = new CUdevice();
  private final CUcontext context = new CUcontext();
  private final CUmodule module = new CUmodule();
  private final String description;
  private final int maxSharedPerBlock; // opt-in limit for dynamic shared memory
  private int attentionSmemSet = DEFAULT_SMEM; // what the attention kernels are allowed now

  private final CUfunction embed;
  private final CUfunction layerNorm;
  private final CUfunction linearF32;
  private final CUfunction linearBf16;
  private final CUfunction linearF16;
  private final CUfunction gemvF32;
  private final CUfunction gemvBf16;
  private final CUfunction gemvF16;
  private final CUfunction activation;
  private final CUfunction addInPlace;
  private final CUfunction gatherRows;
  private final CUfunction kvStoreF32;
  private final CUfunction kvStoreBf16;
  private final CUfunction attentionF32;
  private final CUfunction attentionBf16;
  private final CUfunction copyF32;

  /** Every live device allocation; freed at close. */
  private final Set<CUdeviceptr> live = Collections.newSetFromMap(new IdentityHashMap<>());

  /** Allocations of buffers that became unreachable (queued by the cleaner thread). */
  private final ConcurrentLinkedQueue<CUdeviceptr> released = new ConcurrentLinkedQueue<>();

  // Per-step token tables on the device, uploaded once per BatchLayout (the model passes the same
  // instance to embed and to every layer's attention).
  private final DeviceInts ids = new DeviceInts();
  private final DeviceInts positions = new DeviceInts();
  private final DeviceInts slots = new DeviceInts();
  private final DeviceInts tokenSeq = new DeviceInts();
  private final DeviceInts tableStart = new DeviceInts();
  private final DeviceInts blockTables = new DeviceInts();
  private final DeviceInts groupFirst = new DeviceInts();
  private final DeviceInts groupCount = new DeviceInts();
  private final DeviceInts rowIndex = new DeviceInts();
  private BatchLayout uploadedBatch;
  private BatchLayout groupedBatch;
  private QueryGroups grouped;
  private BatchLayout checkedBatch;
  private CudaKvCache checkedCache;
  private int groupedMax;

  private boolean closed;

  /**
   * Opens device 0.
   *
   * @throws IllegalStateException when {@link CudaProbe} finds no usable GPU (with its reason) or a
   *     driver call fails
   */
  public CudaBackend() {
    CudaProbe.Result probe = CudaProbe.get();
    if (!probe.usable()) {
      throw new IllegalStateException("no usable CUDA GPU: " + probe.describe());
    }
    this.description = probe.describe();
    JCudaDriver.setExceptionsEnabled(false);
    check(JCudaDriver.cuInit(0), "cuInit");
    check(JCudaDriver.cuDeviceGet(device, 0), "cuDeviceGet(0)");
    check(JCudaDriver.cuDevicePrimaryCtxRetain(context, device), "cuDevicePrimaryCtxRetain");
    check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
    int rc = JCudaDriver.cuModuleLoadData(module, ptx());
    if (rc == CUresult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION) {
      JCudaDriver.cuDevicePrimaryCtxRelease(device);
      throw new IllegalStateException(
          "the NVIDIA driver is too old for the CUDA kernels (PTX ISA 9.0 from nvcc 13 needs a"
              + " CUDA 13 driver, r580 or newer): "
              + CudaProbe.callFailed("cuModuleLoadData", rc));
    }
    if (rc != CUresult.CUDA_SUCCESS) {
      JCudaDriver.cuDevicePrimaryCtxRelease(device);
      check(rc, "cuModuleLoadData(" + PTX_RESOURCE + ")");
    }
    int[] v = new int[1];
    check(
        JCudaDriver.cuDeviceGetAttribute(
            v, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, device),
        "cuDeviceGetAttribute(MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)");
    this.maxSharedPerBlock = v[0];
    embed = function("embed");
    layerNorm = function("layer_norm");
    linearF32 = function("linear_f32");
    linearBf16 = function("linear_bf16");
    linearF16 = function("linear_f16");
    gemvF32 = function("linear_gemv_f32");
    gemvBf16 = function("linear_gemv_bf16");
    gemvF16 = function("linear_gemv_f16");
    activation = function("activation");
    addInPlace = function("add_in_place");
    gatherRows = function("gather_rows");
    kvStoreF32 = function("kv_store_f32");
    kvStoreBf16 = function("kv_store_bf16");
    attentionF32 = function("attention_f32");
    attentionBf16 = function("attention_bf16");
    copyF32 = function("copy_f32");
  }

  /** The committed PTX, NUL-terminated as cuModuleLoadData wants it. */
  static byte[] ptx() {
    try (InputStream in = CudaBackend.class.getResourceAsStream(PTX_RESOURCE)) {
      if (in == null) {
        throw new IllegalStateException("resource " + PTX_RESOURCE + " is missing from the jar");
      }
      byte[] text = in.readAllBytes();
      byte[] z = new byte[text.length + 1];
      System.arraycopy(text, 0, z, 0, text.length);
      return z;
    } catch (IOException e) {
      throw new IllegalStateException("cannot read " + PTX_RESOURCE, e);
    }
  }

  private CUfunction function(String name) {
    CUfunction f = new CUfunction();
    check(JCudaDriver.cuModuleGetFunction(f, module, name), "cuModuleGetFunction(" + name + ")");
    return f;
  }

  static void check(int rc, String what) {
    if (rc != CUresult.CUDA_SUCCESS) {
      throw new IllegalStateException(CudaProbe.callFailed(what, rc));
    }
  }

  /** The device, for logs. */
  public String description() {
    return description;
  }

  @Override
  public String name() {
    return "cuda";
  }

  /** Makes the context current on this thread and frees buffers that died since the last call. */
  private void enter() {
    if (closed) {
      throw new IllegalStateException("the CUDA backend is closed");
    }
    check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
    for (CUdeviceptr p; (p = released.poll()) != null; ) {
      if (live.remove(p)) {
        check(JCudaDriver.cuMemFree(p), "cuMemFree");
      }
    }
  }

  private CUdeviceptr alloc(long bytes, String what) {
    CUdeviceptr p = new CUdeviceptr();
    int rc = JCudaDriver.cuMemAlloc(p, Math.max(bytes, 4));
    if (rc == CUresult.CUDA_ERROR_OUT_OF_MEMORY) {
      throw new IllegalStateException(
          "out of GPU memory allocating "
              + bytes
              + " bytes for "
              + what
              + " ("
              + description
              + ")");
    }
    check(rc, "cuMemAlloc(" + bytes + " bytes for " + what + ")");
    live.add(p);
    return p;
  }

  // ---- weights -------------------------------------------------------------------------------

  @Override
  public Matrix upload(TensorView t) {
    enter();
    int rows;
    int cols;
    switch (t.rank()) {
      case 1 -> {
        rows = 1;
        cols = Math.toIntExact(t.dim(0));
      }
      case 2 -> {
        rows = Math.toIntExact(t.dim(0));
        cols = Math.toIntExact(t.dim(1));
      }
      default ->
          throw new IllegalArgumentException(
              "tensor " + t.name() + " has rank " + t.rank() + ", expected 1 or 2");
    }
    if (rows <= 0 || cols <= 0) {
      throw new IllegalArgumentException("tensor " + t.name() + " is empty");
    }
    MemorySegment src = t.data();
    CUdeviceptr dst = alloc(src.byteSize(), t.name());
    copyToDevice(src, dst);
    return new CudaMatrix(dst, t.dtype(), rows, cols);
  }

  /**
   * Copies a (mapped) segment to the device in chunks below 2 GiB. A native segment is read in
   * place through a direct ByteBuffer view; only a heap segment (tests) goes through an array.
   */
  private static void copyToDevice(MemorySegment src, CUdeviceptr dst) {
    long size = src.byteSize();
    for (long off = 0; off < size; off += COPY_CHUNK) {
      long len = Math.min(COPY_CHUNK, size - off);
      MemorySegment part = src.asSlice(off, len);
      Pointer from =
          part.isNative()
              ? Pointer.to(part.asByteBuffer())
              : Pointer.to(part.toArray(ValueLayout.JAVA_BYTE));
      check(
          JCudaDriver.cuMemcpyHtoD(dst.withByteOffset(off), from, len),
          "cuMemcpyHtoD(weights, " + len + " bytes at " + off + ")");
    }
  }

  // ---- buffers and cache ---------------------------------------------------------------------

  @Override
  public Buffer allocate(int rows, int cols) {
    if (rows <= 0 || cols <= 0) {
      throw new IllegalArgumentException("buffer shape must be positive, got " + rows + "×" + cols);
    }
    enter();
    CUdeviceptr p = alloc((long) rows * cols * Float.BYTES, "a " + rows + "×" + cols + " buffer");
    CudaBuffer b = new CudaBuffer(p, rows, cols);
    // The model drops a workspace when it grows: free its memory on the engine thread later.
    CLEANER.register(b, new Release(released, p));
    return b;
  }

  /** Queues a dead buffer's allocation; runs on the cleaner thread, so it only enqueues. */
  private record Release(ConcurrentLinkedQueue<CUdeviceptr> queue, CUdeviceptr ptr)
      implements Runnable {
    @Override
    public void run() {
      queue.add(ptr);
    }
  }

  @Override
  public KvCache allocateKvCache(
      int layers, int numBlocks, int blockSize, int kvDim, KvDType dtype) {
    if (layers <= 0 || numBlocks <= 0 || blockSize <= 0 || kvDim <= 0) {
      throw new IllegalArgumentException(
          "KV cache dimensions must be positive: layers="
              + layers
              + " blocks="
              + numBlocks
              + " blockSize="
              + blockSize
              + " kvDim="
              + kvDim);
    }
    enter();
    long bytes = (long) numBlocks * blockSize * kvDim * dtype.byteSize();
    CUdeviceptr[] keys = new CUdeviceptr[layers];
    CUdeviceptr[] values = new CUdeviceptr[layers];
    for (int l = 0; l < layers; l++) {
      keys[l] = alloc(bytes, "the K cache of layer " + l);
      values[l] = alloc(bytes, "the V cache of layer " + l);
      check(JCudaDriver.cuMemsetD8(keys[l], (byte) 0, bytes), "cuMemsetD8(K cache)");
      check(JCudaDriver.cuMemsetD8(values[l], (byte) 0, bytes), "cuMemsetD8(V cache)");
    }
    return new CudaKvCache(layers, numBlocks, blockSize, kvDim, dtype, keys, values);
  }

  /** Writes host rows into a buffer (tests and benchmarks; the model never needs it). */
  public void write(Buffer x, float[] src, int rows) {
    CudaBuffer b = CudaBuffer.of(x);
    checkRows(b, rows, "write");
    if (src.length < rows * b.cols()) {
      throw new IllegalArgumentException("src holds " + src.length + " floats, needs " + rows);
    }
    if (rows == 0) {
      return;
    }
    enter();
    check(
        JCudaDriver.cuMemcpyHtoD(b.ptr, Pointer.to(src), (long) rows * b.cols() * Float.BYTES),
        "cuMemcpyHtoD(buffer)");
  }

  @Override
  public void readRows(Buffer x, int rows, float[] dst) {
    CudaBuffer b = CudaBuffer.of(x);
    checkRows(b, rows, "readRows");
    if (dst.length < rows * b.cols()) {
      throw new IllegalArgumentException(
          "dst holds " + dst.length + " floats, needs " + rows * b.cols());
    }
    if (rows == 0) {
      return;
    }
    enter();
    // Synchronous on the default stream: waits for every kernel before it, then copies.
    check(
        JCudaDriver.cuMemcpyDtoH(Pointer.to(dst), b.ptr, (long) rows * b.cols() * Float.BYTES),
        "cuMemcpyDtoH(readRows) or a kernel before it");
  }

  private static void checkRows(CudaBuffer b, int n, String op) {
    if (n < 0 || n > b.rows()) {
      throw new IllegalArgumentException(
          op + ": " + n + " rows asked of a buffer of " + b.rows() + " rows");
    }
  }

  // ---- kernels -------------------------------------------------------------------------------

  /** Storage dtype codes of kernels.cu (DT_F32, DT_BF16, DT_F16); not DType's ordinals. */
  static int code(DType d) {
    return switch (d) {
      case F32 -> 0;
      case BF16 -> 1;
      case F16 -> 2;
    };
  }

  /** Activation codes of kernels.cu (ACT_GELU_TANH, ACT_GELU_ERF, ACT_RELU). */
  static int code(Activation a) {
    return switch (a) {
      case GELU_TANH -> 0;
      case GELU_ERF -> 1;
      case RELU -> 2;
    };
  }

  private static void launch(
      CUfunction f, int gx, int gy, int gz, int block, int smem, Pointer params, String name) {
    check(
        JCudaDriver.cuLaunchKernel(f, gx, gy, gz, block, 1, 1, smem, null, params, null),
        "cuLaunchKernel(" + name + ")");
  }

  private static Pointer ptr(CUdeviceptr p) {
    return Pointer.to(p);
  }

  private static Pointer i32(int v) {
    return Pointer.to(new int[] {v});
  }

  private static Pointer i64(long v) {
    return Pointer.to(new long[] {v});
  }

  private static Pointer f32(float v) {
    return Pointer.to(new float[] {v});
  }

  /** Blocks for a grid-stride loop over {@code len} elements, 256 threads each. */
  private static int strideBlocks(long len) {
    return (int) Math.max(1, Math.min((len + 255) / 256, 8192));
  }

  @Override
  public void embed(BatchLayout batch, Matrix wte, Matrix wpe, Buffer out) {
    CudaMatrix te = CudaMatrix.of(wte);
    CudaMatrix pe = CudaMatrix.of(wpe);
    CudaBuffer o = CudaBuffer.of(out);
    int n = batch.numTokens();
    for (int t = 0; t < n; t++) {
      int id = batch.tokenIds()[t];
      int pos = batch.positions()[t];
      if (id < 0 || id >= te.rows()) {
        throw new IllegalArgumentException(
            "token id " + id + " is outside the vocabulary [0, " + te.rows() + ")");
      }
      if (pos >= pe.rows()) {
        throw new IllegalArgumentException(
            "position " + pos + " is beyond the model's " + pe.rows() + " positions");
      }
    }
    checkRows(o, n, "embed");
    enter();
    uploadBatch(batch);
    launch(
        embed,
        n,
        1,
        1,
        256,
        0,
        Pointer.to(
            ptr(ids.ptr),
            ptr(positions.ptr),
            ptr(te.ptr()),
            i32(code(te.dtype())),
            ptr(pe.ptr()),
            i32(code(pe.dtype())),
            i32(te.cols()),
            ptr(o.ptr)),
        "embed");
  }

  @Override
  public void layerNorm(Buffer x, int n, Matrix gamma, Matrix beta, float eps, Buffer out) {
    CudaBuffer in = CudaBuffer.of(x);
    CudaBuffer o = CudaBuffer.of(out);
    CudaMatrix g = CudaMatrix.of(gamma);
    CudaMatrix b = CudaMatrix.of(beta);
    checkRows(in, n, "layerNorm");
    checkRows(o, n, "layerNorm");
    if (n == 0) {
      return;
    }
    enter();
    launch(
        layerNorm,
        n,
        1,
        1,
        256,
        0,
        Pointer.to(
            ptr(in.ptr),
            i32(in.cols()),
            ptr(g.ptr()),
            i32(code(g.dtype())),
            ptr(b.ptr()),
            i32(code(b.dtype())),
            f32(eps),
            ptr(o.ptr)),
        "layer_norm");
  }

  @Override
  public void linear(Buffer x, int n, Matrix w, Matrix bias, Buffer out) {
    CudaBuffer in = CudaBuffer.of(x);
    CudaBuffer o = CudaBuffer.of(out);
    CudaMatrix wm = CudaMatrix.of(w);
    CudaMatrix bm = bias == null ? null : CudaMatrix.of(bias);
    if (in.cols() != wm.cols() || o.cols() != wm.rows()) {
      throw new IllegalArgumentException(
          "linear: x has "
              + in.cols()
              + " columns and out "
              + o.cols()
              + ", the weight is "
              + wm.rows()
              + "×"
              + wm.cols());
    }
    checkRows(in, n, "linear");
    checkRows(o, n, "linear");
    if (n == 0) {
      return;
    }
    enter();
    // A few tokens (decode): one warp per output feature. More: 64×64 shared-memory tiles.
    boolean gemv = n <= GEMV_MAX_TOKENS;
    CUfunction f =
        switch (wm.dtype()) {
          case F32 -> gemv ? gemvF32 : linearF32;
          case BF16 -> gemv ? gemvBf16 : linearBf16;
          case F16 -> gemv ? gemvF16 : linearF16;
        };
    launch(
        f,
        gemv ? ceilDiv(wm.rows(), 8) : ceilDiv(wm.rows(), LINEAR_TILE),
        gemv ? 1 : ceilDiv(n, LINEAR_TILE),
        1,
        256,
        0,
        Pointer.to(
            ptr(in.ptr),
            ptr(wm.ptr()),
            ptr(bm == null ? new CUdeviceptr() : bm.ptr()),
            i32(bm == null ? 0 : code(bm.dtype())),
            i32(n),
            i32(wm.cols()),
            i32(wm.rows()),
            ptr(o.ptr)),
        "linear");
  }

  private static int ceilDiv(int a, int b) {
    return (a + b - 1) / b;
  }

  @Override
  public void activation(Buffer x, int n, Activation kind) {
    CudaBuffer b = CudaBuffer.of(x);
    checkRows(b, n, "activation");
    long len = (long) n * b.cols();
    if (len == 0) {
      return;
    }
    enter();
    launch(
        activation,
        strideBlocks(len),
        1,
        1,
        256,
        0,
        Pointer.to(ptr(b.ptr), i64(len), i32(code(kind))),
        "activation");
  }

  @Override
  public void addInPlace(Buffer x, Buffer y, int n) {
    CudaBuffer a = CudaBuffer.of(x);
    CudaBuffer b = CudaBuffer.of(y);
    if (a.cols() != b.cols()) {
      throw new IllegalArgumentException(
          "addInPlace: " + a.cols() + " columns += " + b.cols() + " columns");
    }
    checkRows(a, n, "addInPlace");
    checkRows(b, n, "addInPlace");
    long len = (long) n * a.cols();
    if (len == 0) {
      return;
    }
    enter();
    launch(
        addInPlace,
        strideBlocks(len),
        1,
        1,
        256,
        0,
        Pointer.to(ptr(a.ptr), ptr(b.ptr), i64(len)),
        "add_in_place");
  }

  @Override
  public void gatherRows(Buffer x, int[] rows, Buffer out) {
    CudaBuffer in = CudaBuffer.of(x);
    CudaBuffer o = CudaBuffer.of(out);
    if (in.cols() != o.cols()) {
      throw new IllegalArgumentException(
          "gatherRows: " + in.cols() + " columns into " + o.cols() + " columns");
    }
    checkRows(o, rows.length, "gatherRows");
    for (int r : rows) {
      if (r < 0 || r >= in.rows()) {
        throw new IllegalArgumentException(
            "gatherRows: row " + r + " is outside the buffer of " + in.rows() + " rows");
      }
    }
    if (rows.length == 0) {
      return;
    }
    enter();
    rowIndex.upload(rows, rows.length);
    launch(
        gatherRows,
        rows.length,
        1,
        1,
        256,
        0,
        Pointer.to(ptr(in.ptr), ptr(rowIndex.ptr), i32(in.cols()), ptr(o.ptr)),
        "gather_rows");
  }

  @Override
  public void attention(
      Buffer qkv, BatchLayout batch, AttentionShape shape, KvCache cache, int layer, Buffer out) {
    CudaBuffer in = CudaBuffer.of(qkv);
    CudaBuffer o = CudaBuffer.of(out);
    CudaKvCache kv = CudaKvCache.of(cache);
    int n = batch.numTokens();
    int hd = shape.headDim();
    if (in.cols() != shape.qkvDim() || o.cols() != shape.outDim()) {
      throw new IllegalArgumentException(
          "attention: qkv has "
              + in.cols()
              + " columns (needs "
              + shape.qkvDim()
              + ") and out "
              + o.cols()
              + " (needs "
              + shape.outDim()
              + ")");
    }
    if (kv.kvDim() != shape.kvDim() || kv.blockSize() != batch.blockSize()) {
      throw new IllegalArgumentException(
          "attention: the cache holds kvDim "
              + kv.kvDim()
              + " in blocks of "
              + kv.blockSize()
              + ", the step needs kvDim "
              + shape.kvDim()
              + " in blocks of "
              + batch.blockSize());
    }
    if (layer < 0 || layer >= kv.layers()) {
      throw new IllegalArgumentException(
          "attention: layer " + layer + " of a cache of " + kv.layers() + " layers");
    }
    checkRows(in, n, "attention");
    checkRows(o, n, "attention");
    if (batch != checkedBatch || kv != checkedCache) { // once per step, not once per layer
      checkSlots(batch, kv);
      checkedBatch = batch;
      checkedCache = kv;
    }
    enter();
    uploadBatch(batch);
    boolean bf16 = kv.dtype() == KvDType.BF16;
    CUdeviceptr kc = kv.keys()[layer];
    CUdeviceptr vc = kv.values()[layer];

    // 1. This step's K and V into their slots (rounded to the cache dtype), before anyone reads.
    launch(
        bf16 ? kvStoreBf16 : kvStoreF32,
        n,
        1,
        1,
        128,
        0,
        Pointer.to(
            ptr(in.ptr),
            ptr(slots.ptr),
            i32(shape.qkvDim()),
            i32(shape.nHead()),
            i32(shape.kvHeads()),
            i32(hd),
            ptr(kc),
            ptr(vc)),
        "kv_store");

    // 2. Attention per query group and K/V head (kernels.cu and AttentionPlan explain the grid).
    AttentionPlan plan = AttentionPlan.choose(shape, maxSharedPerBlock);
    QueryGroups groups = groupTokens(batch, plan.groupMax());
    int smem = AttentionPlan.smem(groups.largest(), plan.headsPerBlock(), hd);
    CUfunction f = bf16 ? attentionBf16 : attentionF32;
    allowSmem(smem);
    launch(
        f,
        groups.groups(),
        shape.kvHeads(),
        ceilDiv(shape.nHead() / shape.kvHeads(), plan.headsPerBlock()),
        256,
        smem,
        Pointer.to(
            ptr(in.ptr),
            ptr(positions.ptr),
            ptr(tokenSeq.ptr),
            ptr(groupFirst.ptr),
            ptr(groupCount.ptr),
            ptr(blockTables.ptr),
            ptr(tableStart.ptr),
            i32(batch.blockSize()),
            i32(shape.qkvDim()),
            i32(shape.nHead()),
            i32(shape.kvHeads()),
            i32(hd),
            i32(plan.headsPerBlock()),
            f32(shape.scale()),
            ptr(kc),
            ptr(vc),
            ptr(o.ptr)),
        "attention");
  }

  /** Every slot and block of the step lies inside the cache (the kernels do not check). */
  private static void checkSlots(BatchLayout batch, CudaKvCache kv) {
    int slotCount = kv.numBlocks() * kv.blockSize();
    for (int t = 0; t < batch.numTokens(); t++) {
      int s = batch.slotMapping()[t];
      if (s < 0 || s >= slotCount) {
        throw new IllegalArgumentException(
            "attention: token " + t + " maps to slot " + s + " of " + slotCount);
      }
    }
    for (int[] table : batch.blockTables()) {
      for (int blk : table) {
        if (blk < 0 || blk >= kv.numBlocks()) {
          throw new IllegalArgumentException(
              "attention: block " + blk + " is outside the cache of " + kv.numBlocks());
        }
      }
    }
  }

  /** Opts both attention kernels in to {@code bytes} of dynamic shared memory when above 48 KiB. */
  private void allowSmem(int bytes) {
    if (bytes <= attentionSmemSet) {
      return;
    }
    for (CUfunction f : List.of(attentionF32, attentionBf16)) {
      check(
          JCudaDriver.cuFuncSetAttribute(
              f, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes),
          "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES, " + bytes + ")");
    }
    attentionSmemSet = bytes;
  }

  /** Uploads the step's token tables once per BatchLayout instance. */
  private void uploadBatch(BatchLayout batch) {
    if (batch == uploadedBatch) {
      return;
    }
    int n = batch.numTokens();
    ids.upload(batch.tokenIds(), n);
    positions.upload(batch.positions(), n);
    slots.upload(batch.slotMapping(), n);
    tokenSeq.upload(batch.tokenSeq(), n);
    int[][] tables = batch.blockTables();
    int[] start = new int[tables.length];
    int total = 0;
    for (int s = 0; s < tables.length; s++) {
      start[s] = total;
      total += tables[s].length;
    }
    int[] flat = new int[Math.max(total, 1)];
    for (int s = 0; s < tables.length; s++) {
      System.arraycopy(tables[s], 0, flat, start[s], tables[s].length);
    }
    tableStart.upload(start, start.length);
    blockTables.upload(flat, flat.length);
    uploadedBatch = batch;
  }

  /** The step's query groups, computed and uploaded once per BatchLayout and group size. */
  private QueryGroups groupTokens(BatchLayout batch, int groupMax) {
    if (batch != groupedBatch || groupMax != groupedMax) {
      QueryGroups g = QueryGroups.of(batch.tokenSeq(), batch.numTokens(), groupMax);
      groupFirst.upload(g.first(), g.groups());
      groupCount.upload(g.count(), g.groups());
      grouped = g;
      groupedBatch = batch;
      groupedMax = groupMax;
    }
    return grouped;
  }

  /** A growable int array in device memory (a per-step table). */
  private final class DeviceInts {
    CUdeviceptr ptr;
    int capacity;

    void upload(int[] values, int count) {
      if (count > capacity) {
        if (ptr != null && live.remove(ptr)) {
          check(JCudaDriver.cuMemFree(ptr), "cuMemFree");
        }
        int cap = Math.max(count, Math.max(64, capacity * 2));
        ptr = alloc((long) cap * Integer.BYTES, "a token table");
        capacity = cap;
      }
      if (count > 0) {
        check(
            JCudaDriver.cuMemcpyHtoD(ptr, Pointer.to(values), (long) count * Integer.BYTES),
            "cuMemcpyHtoD(token table)");
      }
    }
  }

  // ---- benchmarks ----------------------------------------------------------------------------

  /**
   * Device memory bandwidth in GB/s (10⁹ bytes per second, read plus written) of a float4 copy
   * kernel over {@code bytes}, best of {@code iterations} timed with CUDA events.
   */
  public double measureCopyBandwidth(long bytes, int iterations) {
    enter();
    long len4 = bytes / 16;
    CUdeviceptr src = alloc(len4 * 16, "the bandwidth check");
    CUdeviceptr dst = alloc(len4 * 16, "the bandwidth check");
    CUevent start = new CUevent();
    CUevent stop = new CUevent();
    check(JCudaDriver.cuEventCreate(start, CUevent_flags.CU_EVENT_DEFAULT), "cuEventCreate");
    check(JCudaDriver.cuEventCreate(stop, CUevent_flags.CU_EVENT_DEFAULT), "cuEventCreate");
    try {
      check(JCudaDriver.cuMemsetD8(src, (byte) 1, len4 * 16), "cuMemsetD8");
      Pointer params = Pointer.to(ptr(src), ptr(dst), i64(len4));
      int blocks = (int) Math.min((len4 + 255) / 256, 65536);
      double best = 0;
      for (int i = 0; i < iterations + 1; i++) {
        check(JCudaDriver.cuEventRecord(start, null), "cuEventRecord");
        launch(copyF32, blocks, 1, 1, 256, 0, params, "copy_f32");
        check(JCudaDriver.cuEventRecord(stop, null), "cuEventRecord");
        check(JCudaDriver.cuEventSynchronize(stop), "cuEventSynchronize");
        float[] ms = new float[1];
        check(JCudaDriver.cuEventElapsedTime(ms, start, stop), "cuEventElapsedTime");
        if (i > 0) { // the first run warms up (and JIT-loads the kernel)
          best = Math.max(best, 2.0 * len4 * 16 / (ms[0] * 1e-3) / 1e9);
        }
      }
      return best;
    } finally {
      JCudaDriver.cuEventDestroy(start);
      JCudaDriver.cuEventDestroy(stop);
      for (CUdeviceptr p : new CUdeviceptr[] {src, dst}) {
        live.remove(p);
        JCudaDriver.cuMemFree(p);
      }
    }
  }

  /** Waits for every queued kernel (benchmarks time with it). */
  public void synchronize() {
    enter();
    check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize (or a kernel before it)");
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    JCudaDriver.cuCtxSetCurrent(context);
    List<CUdeviceptr> all = new ArrayList<>(live);
    live.clear();
    released.clear();
    for (CUdeviceptr p : all) {
      JCudaDriver.cuMemFree(p);
    }
    JCudaDriver.cuModuleUnload(module);
    JCudaDriver.cuDevicePrimaryCtxRelease(device);
  }
}

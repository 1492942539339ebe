package dev.starserve.gateway.generate;

import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.TokenizeRequest;
import dev.starserve.proto.worker.v1.TokenizeResponse;
import dev.starserve.proto.worker.v1.WorkerInfo;
import io.vertx.core.Future;
import java.util.List;

/**
 * What the public APIs (fmaas gRPC, OpenAI, TGI) call to run generations, whatever serves them: the
 * cluster router in production, a scripted fake in tests. Requests are the worker API's messages:
 * the API adapters translate and validate at the edge, then hand over one {@link GenerateRequest}
 * per sequence (an OpenAI {@code n > 1} is n sequences with seeds seed, seed+1, ...).
 *
 * <p>All methods are called on a Vert.x context and never block; listener callbacks arrive on the
 * context of the caller of {@link #generate}.
 */
public interface Generator {

  /**
   * Starts one sequence. The listener gets {@code onStarted} once, then {@code onTokens} zero or
   * more times, then exactly one of {@code onFinished} or {@code onError}; nothing after that. A
   * gRPC deadline in the caller's {@code io.grpc.Context} when this is called bounds the sequence,
   * as grpc-java propagates deadlines: the workers are told the time left, and when it passes the
   * sequence ends with {@link GenerationException.Kind#DEADLINE_EXCEEDED}.
   */
  GenerationStream generate(GenerateRequest request, GenerationListener listener);

  /** Tokenizes text with the model's tokenizer. Fails with {@link GenerationException}. */
  Future<TokenizeResponse> tokenize(String modelId, TokenizeRequest request);

  /**
   * The models served now, one {@link WorkerInfo} per model (any READY worker's record; its load
   * fields are that worker's). Empty when no worker is ready.
   */
  List<WorkerInfo> models();
}

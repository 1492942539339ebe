package dev.starserve.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.ServiceDescriptor;
import dev.starserve.proto.fmaas.GenerationResponse;
import dev.starserve.proto.fmaas.GenerationServiceGrpc;
import dev.starserve.proto.fmaas.Parameters;
import dev.starserve.proto.fmaas.SamplingParameters;
import dev.starserve.proto.fmaas.StopReason;
import dev.starserve.proto.fmaas.StoppingCriteria;
import dev.starserve.proto.worker.v1.GenerateRequest;
import dev.starserve.proto.worker.v1.WorkerServiceGrpc;
import org.junit.jupiter.api.Test;

/**
 * Facts of the TGIS wire format (IBM text-generation-inference {@code generation.proto}) that
 * existing clients depend on: package, service and method names, field numbers and enum values. A
 * renumbering here breaks every deployed client silently, so each is pinned.
 */
class FmaasWireFormatTest {
  static void field(Descriptor d, String name, int number, FieldDescriptor.Type type) {
    FieldDescriptor f = d.findFieldByName(name);
    assertNotNull(f, d.getFullName() + "." + name);
    assertEquals(number, f.getNumber(), d.getFullName() + "." + name);
    assertEquals(type, f.getType(), d.getFullName() + "." + name);
  }

  @Test
  void generationResponseFieldsHaveTheTgisNumbers() {
    Descriptor d = GenerationResponse.getDescriptor();
    assertEquals("fmaas.GenerationResponse", d.getFullName());
    field(d, "input_token_count", 6, FieldDescriptor.Type.UINT32);
    field(d, "generated_token_count", 2, FieldDescriptor.Type.UINT32);
    field(d, "text", 4, FieldDescriptor.Type.STRING);
    field(d, "stop_reason", 7, FieldDescriptor.Type.ENUM);
    field(d, "stop_sequence", 11, FieldDescriptor.Type.STRING);
    field(d, "seed", 10, FieldDescriptor.Type.UINT64);
    field(d, "tokens", 8, FieldDescriptor.Type.MESSAGE);
    field(d, "input_tokens", 9, FieldDescriptor.Type.MESSAGE);
  }

  @Test
  void parametersAndTheirPartsHaveTheTgisNumbers() {
    Descriptor p = Parameters.getDescriptor();
    field(p, "method", 1, FieldDescriptor.Type.ENUM);
    field(p, "sampling", 2, FieldDescriptor.Type.MESSAGE);
    field(p, "stopping", 3, FieldDescriptor.Type.MESSAGE);
    field(p, "response", 4, FieldDescriptor.Type.MESSAGE);
    field(p, "decoding", 5, FieldDescriptor.Type.MESSAGE);
    field(p, "truncate_input_tokens", 6, FieldDescriptor.Type.UINT32);
    Descriptor s = SamplingParameters.getDescriptor();
    field(s, "temperature", 1, FieldDescriptor.Type.FLOAT);
    field(s, "top_k", 2, FieldDescriptor.Type.UINT32);
    field(s, "top_p", 3, FieldDescriptor.Type.FLOAT);
    field(s, "typical_p", 4, FieldDescriptor.Type.FLOAT);
    field(s, "seed", 5, FieldDescriptor.Type.UINT64);
    Descriptor st = StoppingCriteria.getDescriptor();
    field(st, "max_new_tokens", 1, FieldDescriptor.Type.UINT32);
    field(st, "min_new_tokens", 2, FieldDescriptor.Type.UINT32);
    field(st, "time_limit_millis", 3, FieldDescriptor.Type.UINT32);
    field(st, "stop_sequences", 4, FieldDescriptor.Type.STRING);
  }

  @Test
  void stopReasonValuesAreTheTgisOnes() {
    assertEquals(0, StopReason.NOT_FINISHED.getNumber());
    assertEquals(1, StopReason.MAX_TOKENS.getNumber());
    assertEquals(2, StopReason.EOS_TOKEN.getNumber());
    assertEquals(3, StopReason.CANCELLED.getNumber());
    assertEquals(4, StopReason.TIME_LIMIT.getNumber());
    assertEquals(5, StopReason.STOP_SEQUENCE.getNumber());
    assertEquals(6, StopReason.TOKEN_LIMIT.getNumber());
    assertEquals(7, StopReason.ERROR.getNumber());
  }

  @Test
  void theServicesHaveTheirWireNamesAndStubs() {
    assertEquals("fmaas.GenerationService", GenerationServiceGrpc.SERVICE_NAME);
    ServiceDescriptor g =
        dev.starserve.proto.fmaas.Generation.getDescriptor().findServiceByName("GenerationService");
    for (String m : new String[] {"Generate", "GenerateStream", "Tokenize", "ModelInfo"}) {
      assertNotNull(g.findMethodByName(m), m);
    }
    assertEquals("starserve.worker.v1.WorkerService", WorkerServiceGrpc.SERVICE_NAME);
    field(GenerateRequest.getDescriptor(), "resume_token_ids", 11, FieldDescriptor.Type.UINT32);
  }
}

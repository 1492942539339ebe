package dev.starserve.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.starserve.proto.worker.v1.InfoRequest;
import dev.starserve.proto.worker.v1.WorkerInfo;
import dev.starserve.proto.worker.v1.WorkerServiceGrpc;
import dev.starserve.proto.worker.v1.WorkerState;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code starserve worker}: flags, the secret file, a port-0 start, Info, and drain on close. */
class WorkerCommandTest {
  @TempDir Path tmp;

  @Test
  void durationsTakeUnits() {
    assertEquals(Duration.ofSeconds(30), WorkerCommand.parseDuration("--drain-timeout", "30s"));
    assertEquals(Duration.ofMillis(500), WorkerCommand.parseDuration("--drain-timeout", "500ms"));
    assertEquals(Duration.ofMinutes(2), WorkerCommand.parseDuration("--drain-timeout", "2m"));
    assertEquals(Duration.ofSeconds(7), WorkerCommand.parseDuration("--drain-timeout", "7"));
    assertEquals(Duration.ofSeconds(3), WorkerCommand.parseDuration("--drain-timeout", "PT3S"));
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> WorkerCommand.parseDuration("--drain-timeout", "soon"));
    assertTrue(e.getMessage().startsWith("--drain-timeout"), e.getMessage());
  }

  @Test
  void workerFlagsComeFromTheEnvironmentAndTheConfigFileToo() throws Exception {
    Path file = tmp.resolve("starserve.properties");
    Files.writeString(file, "worker.drain-timeout = 5s\nmax-pending-events = 64\n");
    String[] args = {"--model", "m", "--config", file.toString()};
    WorkerCommand cmd = new WorkerCommand();
    CommandLine cl = new CommandLine(cmd);
    cl.setDefaultValueProvider(
        SettingsDefaultProvider.forArgs(
            java.util.List.of(args), java.util.Map.of("STARSERVE_WORKER_GRPC_PORT", "0")));
    cl.parseArgs(args);
    assertEquals(0, cmd.grpcPort);
    assertEquals("5s", cmd.drainTimeout);
    assertEquals(64, cmd.maxPendingEvents);
    assertEquals("127.0.0.1", cmd.host);
  }

  @Test
  void aWorkerStartsOnAnyPortServesInfoWithTheSecretAndDrainsOnClose() throws Exception {
    Path model = tmp.resolve("tiny");
    assertEquals(
        0,
        Main.run("make-model", "--shape", "tiny", "--dtype", "float32", "--out", model.toString()));
    Path secret = tmp.resolve("secret");
    Files.writeString(secret, "cluster-secret\n");
    WorkerCommand cmd = new WorkerCommand();
    new CommandLine(cmd)
        .parseArgs(
            "--model",
            model.toString(),
            "--grpc-port",
            "0",
            "--worker-id",
            "w-test",
            "--cluster-secret-file",
            secret.toString(),
            "--drain-timeout",
            "2s",
            "--kv-cache-blocks",
            "32",
            "--threads",
            "1",
            "--cluster-name",
            "worker-command-test-" + java.util.UUID.randomUUID());
    WorkerCommand.Running running = cmd.start();
    ManagedChannel ch =
        Grpc.newChannelBuilderForAddress(
                "127.0.0.1", running.server().port(), InsecureChannelCredentials.create())
            .build();
    try {
      assertTrue(running.server().port() > 0);
      var bare = WorkerServiceGrpc.newBlockingStub(ch);
      StatusRuntimeException e =
          assertThrows(
              StatusRuntimeException.class, () -> bare.info(InfoRequest.getDefaultInstance()));
      assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
      Metadata m = new Metadata();
      m.put(
          Metadata.Key.of("x-starserve-secret", Metadata.ASCII_STRING_MARSHALLER),
          "cluster-secret");
      WorkerInfo info =
          bare.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(m))
              .info(InfoRequest.getDefaultInstance());
      assertEquals("w-test", info.getWorkerId());
      assertEquals("tiny", info.getModelId());
      assertEquals(32, info.getKvBlocksTotal());
      assertEquals(WorkerState.READY, info.getState());
      assertEquals("127.0.0.1:" + running.server().port(), info.getAddress());
    } finally {
      running.close();
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    assertEquals(WorkerState.DRAINING, running.server().state());
  }
}

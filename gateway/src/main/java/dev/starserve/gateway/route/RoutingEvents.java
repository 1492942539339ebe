package dev.starserve.gateway.route;

/** What the router counts; the gateway's metrics implement it. Called on Vert.x threads. */
public interface RoutingEvents {
  /**
   * A request moved to another worker before any of its tokens reached the client.
   *
   * @param model the model id of the worker it moves to
   */
  void retried(String model);

  /** A request moved to another worker after tokens were delivered (it resumes from them). */
  void failedOver(String model);

  RoutingEvents NONE =
      new RoutingEvents() {
        @Override
        public void retried(String model) {}

        @Override
        public void failedOver(String model) {}
      };
}

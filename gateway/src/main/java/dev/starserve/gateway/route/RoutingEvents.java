package dev.starserve.gateway.route;

/** What the router counts; the gateway's metrics implement it. Called on Vert.x threads. */
public interface RoutingEvents {
  /** A request moved to another worker before any of its tokens reached the client. */
  void retried();

  /** A request moved to another worker after tokens were delivered (it resumes from them). */
  void failedOver();

  RoutingEvents NONE =
      new RoutingEvents() {
        @Override
        public void retried() {}

        @Override
        public void failedOver() {}
      };
}

// Finds or builds the Temporal CLI and stripe-mock (cache outside the clone) so that tests and the demo start fast.
import { findOrBuildTemporalCli, NO_TEMPORAL_HELP } from '../src/stack/temporal-binary';
import { findOrBuildStripeMock, NO_STRIPE_MOCK_HELP } from '../src/stack/stripe-mock';

if (process.env.TEMPORAL_ADDRESS) {
  console.log(`[temporal] TEMPORAL_ADDRESS=${process.env.TEMPORAL_ADDRESS}: using that cluster`);
} else {
  const found = await findOrBuildTemporalCli((m) => console.log(m));
  if (found) console.log(`[temporal] Temporal CLI from ${found.source}: ${found.path}`);
  else console.log(`[temporal] ${NO_TEMPORAL_HELP} (the test setup will try the SDK download)`);
}

// stripe-mock validates the Stripe sink's requests in the integration tests; same cache, built once.
const mock = await findOrBuildStripeMock((m) => console.log(m));
if (mock) console.log(`[stripe-mock] from ${mock.source}: ${mock.path}`);
else console.log(`[stripe-mock] ${NO_STRIPE_MOCK_HELP} (test/integration/stripe-sink.test.ts will fail)`);

// Finds or builds the Temporal CLI (cache outside the clone) so that tests and the demo start fast.
import { findOrBuildTemporalCli, NO_TEMPORAL_HELP } from '../src/stack/temporal-binary';

if (process.env.TEMPORAL_ADDRESS) {
  console.log(`[temporal] TEMPORAL_ADDRESS=${process.env.TEMPORAL_ADDRESS}: using that cluster`);
} else {
  const found = await findOrBuildTemporalCli((m) => console.log(m));
  if (found) console.log(`[temporal] Temporal CLI from ${found.source}: ${found.path}`);
  else console.log(`[temporal] ${NO_TEMPORAL_HELP} (the test setup will try the SDK download)`);
}

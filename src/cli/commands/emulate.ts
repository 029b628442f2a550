import type { Command } from 'commander';
import { ReconError } from '../../domain/errors';
import type { EmulatorHandle, EmulatorOptions } from '../../emulators/common';
import { startMetronomeEmulator } from '../../emulators/metronome';
import { startStripeEmulator } from '../../emulators/stripe';
import { startWebhookReceiver } from '../../emulators/webhook-receiver';
import type { CommandContext } from '../context';
import { onShutdownSignal } from '../signals';

interface EmulateOptions {
  port?: string;
  state?: string;
  secretEnv?: string;
  customer?: string[];
  meter?: string[];
}

interface Emulator {
  /** The variable the credential is read from when --secret-env is not given. */
  secretEnv: string;
  start(o: EmulatorOptions, cli: EmulateOptions): Promise<{ handle: EmulatorHandle; seeded: string[] }>;
}

/** The emulators `recon emulate` can start, by the sink kind they stand in for. */
const EMULATORS: Record<string, Emulator> = {
  stripe: {
    secretEnv: 'STRIPE_API_KEY',
    async start(o, cli) {
      const handle = await startStripeEmulator({ ...o, customers: cli.customer ?? [], meters: cli.meter ?? [] });
      const seeded = [
        ...(cli.customer ?? []).map((c) => `customer ${c}`),
        ...(cli.meter ?? []).map((m) => `meter ${m} (${handle.meters().find((x) => x.event_name === m)?.id ?? '?'})`),
      ];
      return { handle, seeded };
    },
  },
  metronome: {
    secretEnv: 'METRONOME_API_TOKEN',
    async start(o) {
      return { handle: await startMetronomeEmulator(o), seeded: [] };
    },
  },
  webhook: {
    secretEnv: 'RECON_WEBHOOK_SECRET',
    async start(o) {
      return { handle: await startWebhookReceiver(o), seeded: [] };
    },
  },
};

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerEmulateCommands(program: Command, _ctx: CommandContext): void {
  program
    .command('emulate')
    .description('run a local emulator of a billing sink in the foreground (for trying sinks out and for tests)')
    .argument('<kind>', 'which sink to emulate: stripe, metronome or webhook')
    .option('--port <n>', 'port on 127.0.0.1 (default: any free port)')
    .option('--state <file>', 'keep the emulator state in this file, so a restart keeps what it holds')
    .option(
      '--secret-env <name>',
      'environment variable holding the key the emulator accepts (stripe: STRIPE_API_KEY, metronome: METRONOME_API_TOKEN, webhook: RECON_WEBHOOK_SECRET, a whsec_ secret)',
    )
    .option('--customer <id>', 'stripe: create this customer (cus_…) at start; repeatable', collect)
    .option(
      '--meter <event_name>',
      'stripe: create an active sum meter for this event name at start; repeatable',
      collect,
    )
    .action(async (kind: string, o: EmulateOptions) => {
      const emulator = EMULATORS[kind];
      if (!emulator)
        throw new ReconError(
          'bad_input',
          `no emulator "${kind}" in this build (available: ${Object.keys(EMULATORS).join(', ')}); see \`recon emulate --help\``,
        );
      if (kind !== 'stripe' && (o.customer || o.meter))
        throw new ReconError('invalid_usage', '--customer and --meter are for `recon emulate stripe` only');
      for (const c of o.customer ?? [])
        if (!/^cus_[A-Za-z0-9]+$/.test(c))
          throw new ReconError('bad_input', `--customer ${c}: expected a Stripe customer id such as cus_demo`);
      for (const m of o.meter ?? [])
        if (!/^[A-Za-z0-9_.:-]{1,100}$/.test(m))
          throw new ReconError('bad_input', `--meter ${m}: expected a meter event name such as resolved_ticket`);
      let port = 0;
      if (o.port !== undefined) {
        if (!/^\d{1,5}$/.test(o.port) || Number(o.port) > 65535)
          throw new ReconError('bad_input', `--port ${o.port}: expected a port number between 0 and 65535`);
        port = Number(o.port);
      }
      const envName = o.secretEnv ?? emulator.secretEnv;
      if (!/^[A-Z_][A-Z0-9_]{0,127}$/.test(envName))
        throw new ReconError('bad_input', `--secret-env ${envName}: expected the name of an environment variable`);
      const secret = process.env[envName];
      if (!secret)
        throw new ReconError(
          'missing_option',
          `set ${envName} to the key the emulator should accept (any value, e.g. sk_test_local), and the same for the sink`,
        );
      const { handle, seeded } = await emulator.start(
        { port, stateFile: o.state, secret, log: (l) => process.stderr.write(l + '\n') },
        o,
      );
      const extras = [...seeded, o.state ? `state ${o.state}` : '', `key from ${envName}`].filter(Boolean).join(', ');
      console.log(`${kind} emulator at ${handle.url} (${extras}); Ctrl-C stops it`);
      await new Promise<void>((resolve) => onShutdownSignal(() => handle.close().then(resolve)));
    });
}

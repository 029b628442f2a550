import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ReconError } from '../domain/errors';
import { CommandContext } from './context';
import { registerDataCommands } from './commands/data';
import { registerRunCommands } from './commands/run';
import { registerScheduleCommands } from './commands/schedule';
import { registerOutcomeCommands } from './commands/outcome';
import { registerStackCommands } from './commands/stack';
import { registerDisputeCommands } from './commands/dispute';
import { registerFinanceCommands } from './commands/finance';
import { registerTenantCommands } from './commands/tenant';
import { registerRunViews } from './commands/runs';
import { markRequiredOptions } from './format';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(ctx: CommandContext): Command {
  const program = new Command('recon')
    .description('Outcome-billing reconciliation: bill only outcomes the customer\'s own records confirm')
    .version(version, '-V, --version', 'print the version of recon')
    .option('--json', 'print machine-readable JSON')
    .configureHelp(markRequiredOptions)
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  registerStackCommands(program, ctx);
  registerDataCommands(program, ctx);
  registerRunCommands(program, ctx);
  registerRunViews(program, ctx);
  registerTenantCommands(program, ctx);
  registerScheduleCommands(program, ctx);
  registerOutcomeCommands(program, ctx);
  registerDisputeCommands(program, ctx);
  registerFinanceCommands(program, ctx);
  return program;
}

/** One line on stderr and a non-zero exit for every failure; the stack trace only on request. */
function reportError(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode;
  const e = err as Error & { code?: string };
  const code = err instanceof ReconError ? err.code : e?.code ?? 'error';
  const message = (e?.message ?? String(err)).split('\n')[0];
  process.stderr.write(`recon: ${code}: ${message}\n`);
  if (process.env.RECON_DEBUG) console.error(err);
  return err instanceof ReconError ? 2 : 1;
}

export async function main(argv: string[]): Promise<void> {
  const ctx = new CommandContext();
  let exitCode = 0;
  try {
    await buildProgram(ctx).parseAsync(argv);
  } catch (err) {
    exitCode = reportError(err);
  } finally {
    await ctx.close();
  }
  process.exit(exitCode);
}

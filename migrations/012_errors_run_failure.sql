-- Why a run failed, on its row: the error catalogue's code and the message support reads
-- (`recon run` prints the same). Set when the workflow gives up on a permanent error; kept when
-- a later run of the same asOf starts the row again, as the last failure.
alter table runs add column failure_code text, add column failure_message text;

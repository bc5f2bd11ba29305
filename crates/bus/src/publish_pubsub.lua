-- redtail idempotent batch publish, pub/sub mode. One call per batch of lines of ONE file.
-- The same contract as publish.lua (skip what is committed, advance the offset in the same
-- atomic step, refuse a batch whose predecessor did not land), with a leaner layout: Redis
-- pays per argument (parsing it, then copying it into a Lua string), and a line here needs
-- only its bytes.
--
-- KEYS[1] offsets hash (redtail:offsets)
-- ARGV[1] hash field "<source>:<fid>"   ARGV[2] channel
-- ARGV[3] "after": '' or an offset; with an offset the batch is refused (nothing written,
--         reply {0, 0, committed, '', 1}) unless the committed offset has reached it (see
--         publish.lua: a batch sent behind one still in flight carries that one's end).
-- ARGV[4] start offset of the first line   ARGV[5] end offset of the last line
-- ARGV[6] the end offset of every line, in order, separated by spaces: read only when part
--         of the batch is already committed (a retry after a lost reply, a restart from an
--         older checkpoint), so a fresh batch pays one comparison for the skip.
-- ARGV[7..] the lines, one argument each (bytes as they are).
local field = ARGV[1]
local committed_str = redis.call('HGET', KEYS[1], field)
local committed = 0
if committed_str then committed = tonumber(committed_str) else committed_str = '0' end
if ARGV[3] ~= '' and committed < tonumber(ARGV[3]) then
  return {0, 0, committed_str, '', 1}
end
local first = 7
if committed > tonumber(ARGV[4]) then
  for e in string.gmatch(ARGV[6], '%d+') do
    if tonumber(e) > committed then break end
    first = first + 1
  end
end
local n = #ARGV
if first > n then
  return {0, n - 6, committed_str, '', 0}
end
local call, channel = redis.call, ARGV[2]
-- The offset is stored BEFORE the PUBLISHes. PUBLISH is no write to Redis: under
-- `maxmemory` it runs, and an HSET after it would then be refused with OOM — every retry
-- would send the batch to the subscribers again. Refused here, the batch writes nothing.
-- (A script that wrote cannot be stopped by SCRIPT KILL either: all the PUBLISHes happen.)
-- So nothing after the HSET may fail: the one thing that could, an ACL without this
-- channel, is checked first (the same check the PUBLISH would make).
if not redis.acl_check_cmd('PUBLISH', channel, '') then
  return redis.error_reply('NOPERM this user has no permissions to PUBLISH to the channel')
end
call('HSET', KEYS[1], field, ARGV[5])
for i = first, n do
  call('PUBLISH', channel, ARGV[i])
end
return {n - first + 1, first - 7, ARGV[5], '', 0}

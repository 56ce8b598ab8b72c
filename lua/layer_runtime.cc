#include "lua/layer_runtime.h"

namespace syncd::lua {

// Custom layers (lsyncd's layers 1 to 3), run as lsyncd 2.2.3 runs them: a queue of delays
// per sync with lsyncd's combination rules, the inlet and event objects its action, init and
// collect functions see, layer-3 strings turned into spawn()/spawnShell() calls with the same
// argument vectors, and lsyncd's default action, init and collect. The watcher, the timers
// and the processes are syncd's (C++): they call the functions returned at the end, and
// spawn() calls host.exec.
//
// Paths in delays are as lsyncd keeps them: relative to the source with a leading '/', and a
// trailing '/' for directories; the source ends with '/'.
const char kLayerRuntime[] = R"lua(
local host = ...
local R = {}

local function isdirpath(p) return p:byte(-1) == 47 end
local function starts(s, prefix) return s:sub(1, #prefix) == prefix end
local function cutslash(p) if isdirpath(p) then return p:sub(1, -2) end return p end

-- The keys a custom sync inherits from `default` when no layer of its own sets them.
local inherited = { 'action', 'collect', 'init', 'prepare', 'maxDelays', 'maxProcesses',
                    'checkgauge' }

---------------------------------------------------------------------------------------------
-- Combining a new delay with a queued one (lsyncd 2.2.3's Combiner). Two events on the same
-- file are not combined (2.2.3 returns nothing for them but a Create after a Delete): each
-- runs, in order. A directory blocks what lies beneath it.
local function combine(d1, d2)
  if d1.etype == 'Init' or d1.etype == 'Blanket' then return 'stack' end
  local p1, p2 = d1.path, d2.path
  if d1.etype ~= 'Move' and d2.etype ~= 'Move' then
    if p1 == p2 and d1.etype == 'Delete' and d2.etype == 'Create' then
      if isdirpath(p2) then return 'stack' end
      return 'replace'
    end
    if isdirpath(p1) and starts(p2, p1) or isdirpath(p2) and starts(p1, p2) then return 'stack' end
    return nil
  end
  if d1.etype == 'Move' and d2.etype ~= 'Move' then
    if p1 == p2 or isdirpath(p2) and starts(p1, p2) or isdirpath(p1) and starts(p2, p1) then
      return 'stack'
    end
    if d1.path2 == p2 then
      if d2.etype == 'Delete' or d2.etype == 'Create' then return 'toDelete,stack' end
      return 'stack'
    end
    if isdirpath(p2) and starts(d1.path2, p2) or isdirpath(d1.path2) and starts(p2, d1.path2) then
      return 'stack'
    end
    return nil
  end
  if d1.etype ~= 'Move' and d2.etype == 'Move' then
    if p1 == p2 or p1 == d2.path2
       or isdirpath(p1) and (starts(p2, p1) or starts(d2.path2, p1))
       or isdirpath(p2) and starts(p1, p2)
       or isdirpath(d2.path2) and starts(p1, d2.path2) then
      return 'split'
    end
    return nil
  end
  -- A move on a move: any overlap splits the new one.
  local a = { d1.path, d1.path2 }
  local b = { d2.path, d2.path2 }
  for _, x in ipairs(a) do
    for _, y in ipairs(b) do
      if x == y or isdirpath(x) and starts(y, x) or isdirpath(y) and starts(x, y) then
        return 'split'
      end
    end
  end
  return nil
end

---------------------------------------------------------------------------------------------
-- Events and event lists: what user functions see of a delay.
local e2d = setmetatable({}, { __mode = 'k' })   -- event or list -> delay or delay list
local d2ev = setmetatable({}, { __mode = 'k' })  -- delay or list -> event(s)

local function eventpath(event)
  local d = e2d[event]
  if rawget(event, 'move') == 'To' then return d.path2 end
  return d.path
end

local function relpath(event)
  local p = eventpath(event)
  if p:byte(1) == 47 then p = p:sub(2) end
  return p
end

local function dirof(p) return p:match('^(.*/)[^/]+/?') or '' end

local fields = {
  config = function(e) return e2d[e].sync.config end,
  inlet = function(e) return e2d[e].sync.inlet end,
  etype = function(e) return e2d[e].etype end,
  isList = function() return false end,
  status = function(e) return e2d[e].status end,
  isdir = function(e) return isdirpath(eventpath(e)) end,
  name = function(e) return eventpath(e):match('[^/]+/?$') end,
  basename = function(e) return eventpath(e):match('([^/]+)/?$') end,
  path = function(e) return relpath(e) end,
  pathdir = function(e) return dirof(relpath(e)) end,
  pathname = function(e) return cutslash(relpath(e)) end,
  source = function(e) return e2d[e].sync.source end,
  sourcePath = function(e) return e2d[e].sync.source .. eventpath(e) end,
  sourcePathdir = function(e) return e2d[e].sync.source .. dirof(eventpath(e)) end,
  sourcePathname = function(e) return e2d[e].sync.source .. cutslash(eventpath(e)) end,
  target = function(e) return e2d[e].sync.config.target end,
  targetPath = function(e) return e2d[e].sync.config.target .. eventpath(e) end,
  targetPathdir = function(e) return e2d[e].sync.config.target .. dirof(eventpath(e)) end,
  targetPathname = function(e) return e2d[e].sync.config.target .. cutslash(eventpath(e)) end,
}

local eventmeta = {
  __index = function(e, field)
    local f = fields[field]
    if not f then
      if field == 'move' then return nil end
      error('event does not have field "' .. tostring(field) .. '"', 2)
    end
    return f(e)
  end,
}

local function d2e(d)
  local known = d2ev[d]
  if d.etype ~= 'Move' then
    if known then return known end
    local e = setmetatable({}, eventmeta)
    e2d[e], d2ev[d] = d, e
    return e
  end
  if known then return known[1], known[2] end
  local e1 = setmetatable({ move = 'Fr' }, eventmeta)
  local e2 = setmetatable({ move = 'To' }, eventmeta)
  e2d[e1], e2d[e2], d2ev[d] = d, d, { e1, e2 }
  return e1, e2
end

local listfuncs = {
  getPaths = function(list, mutator)
    local out = {}
    for _, d in ipairs(e2d[list]) do
      local a, b
      if mutator then a, b = mutator(d.etype, d.path, d.path2) else a, b = d.path, d.path2 end
      out[#out + 1] = a
      if b then out[#out + 1] = b end
    end
    return out
  end,
  getSourcePaths = function(list, mutator)
    local out = {}
    local source = e2d[list].sync.source
    for _, d in ipairs(e2d[list]) do
      local a, b
      if mutator then a, b = mutator(d.etype, d.path, d.path2) else a, b = d.path, d.path2 end
      out[#out + 1] = source .. cutslash(a):gsub('^/', '')
      if b then out[#out + 1] = source .. cutslash(b):gsub('^/', '') end
    end
    return out
  end,
}

local listmeta = {
  __index = function(list, name)
    if name == 'isList' then return true end
    if name == 'config' then return e2d[list].sync.config end
    local f = listfuncs[name]
    if not f then error('event list does not have function "' .. tostring(name) .. '"', 2) end
    return function(...) return f(list, ...) end
  end,
}

local function dl2el(dlist)
  local known = d2ev[dlist]
  if known then return known end
  local list = setmetatable({}, listmeta)
  e2d[list], d2ev[dlist] = dlist, list
  return list
end

---------------------------------------------------------------------------------------------
-- The delay queue of one sync.
local function newdelay(sync, etype, alarm, path, path2)
  return { sync = sync, etype = etype, alarm = alarm, path = path, path2 = path2, status = 'wait' }
end

local function stack(old, new)
  new.status = 'block'
  old.blocks = old.blocks or {}
  table.insert(old.blocks, new)
end

local function indexof(sync, d)
  for i, x in ipairs(sync.delays) do if x == d then return i end end
  return nil
end

local function removedelay(sync, d)
  local i = indexof(sync, d)
  if not i then error('the delay queue lost a delay', 2) end
  table.remove(sync.delays, i)
  if d.blocks then
    for _, b in ipairs(d.blocks) do b.status = 'wait' end
  end
end

-- lsyncd's exclude patterns, for the excludes an action adds while running.
local function toluapattern(p)
  local o = p:gsub('%%', '%%%%'):gsub('%^', '%%^'):gsub('%$', '%%$'):gsub('%(', '%%('):gsub('%)', '%%)')
              :gsub('%.', '%%.'):gsub('%[', '%%['):gsub('%]', '%%]'):gsub('%+', '%%+'):gsub('%-', '%%-')
              :gsub('%?', '[^/]'):gsub('%*', '[^/]*'):gsub('%[%^/%]%*%[%^/%]%*', '.*')
  if o:sub(1, 1) == '/' then o = '^' .. o else o = '/' .. o end
  return o
end

local function excluded(sync, path)
  for pattern, lua in pairs(sync.excludes) do
    if path:match(lua .. '/') or path:match(lua .. '$') then return true end
  end
  return false
end

local function queue(sync, etype, time, path, path2)
  if path2 == nil then
    if excluded(sync, path) then return end
  else
    local x1, x2 = excluded(sync, path), excluded(sync, path2)
    if x1 and x2 then return end
    if x2 then return queue(sync, 'Delete', time, path) end
    if x1 then return queue(sync, 'Create', time, path2) end
  end
  if etype == 'Move' and not sync.config.onMove then
    queue(sync, 'Delete', time, path)
    queue(sync, 'Create', time, path2)
    return
  end
  local alarm
  if time and sync.config.delay then alarm = time + sync.config.delay else alarm = host.now() end
  local nd = newdelay(sync, etype, alarm, path, path2)
  if etype == 'Init' or etype == 'Blanket' then
    if #sync.delays > 0 then stack(sync.delays[#sync.delays], nd) end
    table.insert(sync.delays, nd)
    return nd
  end
  for i = #sync.delays, 1, -1 do
    local od = sync.delays[i]
    local ac = combine(od, nd)
    if ac then
      log('Delay', nd.etype, ': ', nd.path, ' ', ac, ' on ', od.etype, ': ', od.path)
      if ac == 'stack' then
        stack(od, nd)
        table.insert(sync.delays, nd)
      elseif ac == 'toDelete,stack' then
        if od.status ~= 'active' then
          local rd = newdelay(sync, 'Delete', od.alarm, od.path)
          rd.status, rd.blocks = od.status, od.blocks
          sync.delays[i] = rd
          stack(rd, nd)
        else
          stack(od, nd)
        end
        table.insert(sync.delays, nd)
      elseif ac == 'replace' then
        if od.status ~= 'active' then
          nd.status, nd.blocks = od.status, od.blocks
          sync.delays[i] = nd
        else
          stack(od, nd)
          table.insert(sync.delays, nd)
        end
      elseif ac == 'split' then
        queue(sync, 'Delete', time, path)
        queue(sync, 'Create', time, path2)
      end
      return nd
    end
  end
  log('Delay', 'New ', nd.etype, ': ', nd.path, nd.path2 and (' -> ' .. nd.path2) or '')
  table.insert(sync.delays, nd)
  return nd
end

local function nextdelay(sync, time)
  for _, d in ipairs(sync.delays) do
    if #sync.delays < sync.config.maxDelays and d.alarm ~= true and time < d.alarm then
      return nil
    end
    if d.status == 'wait' then return d end
  end
end

local function getdelays(sync, test)
  local list = { sync = sync }
  local blocked = {}
  local function block(d)
    blocked[d] = true
    for _, b in ipairs(d.blocks or {}) do block(b) end
  end
  for _, d in ipairs(sync.delays) do
    local take = true
    if test then take = test(d2e(d)) end
    if take == 'break' then break end
    if d.status == 'active' or not take then
      block(d)
    elseif not blocked[d] and d.etype ~= 'Init' then
      list[#list + 1] = d
    end
  end
  return list
end

---------------------------------------------------------------------------------------------
-- Inlets: what action(inlet) is given.
local inletfuncs = {
  getEvent = function(sync) return d2e(nextdelay(sync, host.now())) end,
  getEvents = function(sync, test) return dl2el(getdelays(sync, test)) end,
  discardEvent = function(sync, event)
    local d = e2d[event]
    if d.status ~= 'wait' then
      log('Error', 'Ignored cancel of a non-waiting event of type ', event.etype)
      return
    end
    removedelay(sync, d)
  end,
  createBlanketEvent = function(sync)
    local d = newdelay(sync, 'Blanket', true, '')
    table.insert(sync.delays, d)
    return d2e(d)
  end,
  getConfig = function(sync) return sync.config end,
  addExclude = function(sync, pattern) sync.excludes[pattern] = toluapattern(pattern) end,
  rmExclude = function(sync, pattern) sync.excludes[pattern] = nil end,
  getExcludes = function(sync)
    local out = {}
    for _, p in ipairs(sync.config_excludes) do out[#out + 1] = p end
    for p in pairs(sync.excludes) do out[#out + 1] = p end
    return out
  end,
  getFilters = function(sync)
    local out = {}
    for _, p in ipairs(sync.config_excludes) do out[#out + 1] = '- ' .. p end
    for p in pairs(sync.excludes) do out[#out + 1] = '- ' .. p end
    return out
  end,
  hasFilters = function() return false end,
  appendFilter = function(sync, rule, pattern)
    if rule == '-' then sync.excludes[pattern] = toluapattern(pattern) end
  end,
}

local inlets = setmetatable({}, { __mode = 'k' })
local inletmeta = {
  __index = function(inlet, name)
    local f = inletfuncs[name]
    if not f then error('inlet does not have function "' .. tostring(name) .. '"', 2) end
    return function(...) return f(inlets[inlet], ...) end
  end,
}

---------------------------------------------------------------------------------------------
-- spawn() and spawnShell(): processes started by syncd on its loop.
local function flatten(into, ...)
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    if type(v) == 'table' then
      flatten(into, table.unpack(v))
    elseif v ~= nil then
      into[#into + 1] = tostring(v)
    end
  end
end

function spawn(agent, binary, ...)
  if type(agent) ~= 'table' then error('spawning with an invalid agent', 2) end
  if type(binary) ~= 'string' then
    error('calling spawn(agent, binary, ...): binary is not a string', 2)
  end
  local d = e2d[agent]
  if not d then error('spawning with an unknown agent', 2) end
  local sync = d.sync
  if d.status then
    if d.status ~= 'wait' then error('spawn() called on an non-waiting event', 2) end
  else
    for _, x in ipairs(d) do
      if x.status ~= 'wait' and x.status ~= 'block' then
        error('spawn() called on an non-waiting event list', 2)
      end
    end
  end
  local args, input = {}, nil
  if select('#', ...) >= 2 and select(1, ...) == '<' then
    input = select(2, ...)
    flatten(args, select(3, ...))
  else
    flatten(args, ...)
  end
  local pid = host.exec(sync.owner, binary, input, args)
  if not pid then return end
  sync.processes[pid] = d
  sync.nprocesses = sync.nprocesses + 1
  if d.status then
    d.status = 'active'
  else
    for _, x in ipairs(d) do x.status = 'active' end
  end
  return pid
end

function spawnShell(agent, command, ...)
  return spawn(agent, '/bin/sh', '-c', command, '/bin/sh', ...)
end

---------------------------------------------------------------------------------------------
-- Layer 3: a string becomes a function of the event(s) that spawns it, with lsyncd's
-- variables. A string that starts with '/' runs that binary, split on spaces ("" groups);
-- anything else runs through /bin/sh -c with each variable passed as "$n", never spliced
-- into the command text.
local vars = {
  { '%^pathname', 'pathname', 1 }, { '%^pathdir', 'pathdir', 1 }, { '%^path', 'path', 1 },
  { '%^sourcePathname', 'sourcePathname', 1 }, { '%^sourcePathdir', 'sourcePathdir', 1 },
  { '%^sourcePath', 'sourcePath', 1 }, { '%^source', 'source', 1 },
  { '%^targetPathname', 'targetPathname', 1 }, { '%^targetPathdir', 'targetPathdir', 1 },
  { '%^targetPath', 'targetPath', 1 }, { '%^target', 'target', 1 },
  { '%^o%.pathname', 'pathname', 1 }, { '%^o%.path', 'path', 1 },
  { '%^o%.sourcePathname', 'sourcePathname', 1 }, { '%^o%.sourcePathdir', 'sourcePathdir', 1 },
  { '%^o%.sourcePath', 'sourcePath', 1 }, { '%^o%.targetPathname', 'targetPathname', 1 },
  { '%^o%.targetPathdir', 'targetPathdir', 1 }, { '%^o%.targetPath', 'targetPath', 1 },
  { '%^d%.pathname', 'pathname', 2 }, { '%^d%.path', 'path', 2 },
  { '%^d%.sourcePathname', 'sourcePathname', 2 }, { '%^d%.sourcePathdir', 'sourcePathdir', 2 },
  { '%^d%.sourcePath', 'sourcePath', 2 }, { '%^d%.targetPathname', 'targetPathname', 2 },
  { '%^d%.targetPathdir', 'targetPathdir', 2 }, { '%^d%.targetPath', 'targetPath', 2 },
}

local function value(piece, event, event2)
  if piece.literal then return piece.literal end
  local e = piece.which == 2 and event2 or event
  if e == nil then error('^d. variables are only known for moves', 3) end
  return e[piece.field]
end

local function splitargs(str)
  local args = {}
  while str ~= '' do
    local stop, quoted = #str, false
    for i = 1, #str do
      local c = str:sub(i, i)
      if c == '"' then
        quoted = not quoted
      elseif c == ' ' and not quoted then
        stop = i - 1
        break
      end
    end
    args[#args + 1] = str:sub(1, stop)
    str = str:sub(stop + 1):match('^%s*(.-)%s*$')
  end
  return args
end

local function translatebinary(str)
  local args = {}
  for _, arg in ipairs(splitargs(str)) do
    local pieces = { { literal = arg } }
    for _, v in ipairs(vars) do
      local i = 1
      while i <= #pieces do
        local p = pieces[i]
        if p.literal then
          local pre, post = p.literal:match('(.*)' .. v[1] .. '(.*)')
          if pre then
            if pre ~= '' then
              table.insert(pieces, i, { literal = pre })
              i = i + 1
            end
            pieces[i] = { field = v[2], which = v[3] }
            if post ~= '' then table.insert(pieces, i + 1, { literal = post }) end
          end
        end
        i = i + 1
      end
    end
    args[#args + 1] = pieces
  end
  return function(event, event2)
    log('Normal', 'Event ', event.etype, ' spawns action "', str, '"')
    local argv = {}
    for i, pieces in ipairs(args) do
      local s = {}
      for _, p in ipairs(pieces) do s[#s + 1] = value(p, event, event2) end
      argv[i] = table.concat(s)
    end
    spawn(event, table.unpack(argv))
  end
end

local function translateshell(str)
  local command, used = str, {}
  for _, v in ipairs(vars) do
    local n = #used + 1
    local found = false
    command = command:gsub(v[1], function() found = true; return '"$' .. n .. '"' end)
    if found then used[#used + 1] = { field = v[2], which = v[3] } end
  end
  return function(event, event2)
    local argv = {}
    for i, p in ipairs(used) do argv[i] = value(p, event, event2) end
    local shown = command:gsub('"%$(%d+)"', function(n) return argv[tonumber(n)] end)
    log('Normal', 'Event ', event.etype, ' spawns shell "', shown, '"')
    spawnShell(event, command, table.unpack(argv, 1, #used))
  end
end

local function translate(str)
  str = str:match('^%s*(.-)%s*$')
  if str:byte(1) == 47 then return translatebinary(str) end
  if str:byte(1) == 94 then return translateshell(str:sub(2)) end
  return translateshell(str)
end

---------------------------------------------------------------------------------------------
-- lsyncd's default layer: what a custom sync inherits.
local function default_action(inlet)
  local event, event2 = inlet.getEvent()
  local config = inlet.getConfig()
  local f = config['on' .. event.etype]
  if type(f) == 'function' then f(event, event2) end
  if event.status == 'wait' then inlet.discardEvent(event) end
end

local function default_collect(agent, exitcode)
  local config = agent.config
  local rc
  if config.exitcodes then
    rc = config.exitcodes[exitcode]
  elseif exitcode == 0 then
    rc = 'ok'
  else
    rc = 'die'
  end
  if not agent.isList and agent.etype == 'Init' then
    if rc == 'ok' then
      log('Normal', 'Startup of ', agent.source, ' -> ', agent.target, ' finished.')
      return 'ok'
    elseif rc == 'again' then
      if settings('insist') then
        log('Normal', 'Retrying startup of ', agent.source, ' -> ', agent.target, ': ', exitcode)
        return 'again'
      end
      log('Error', 'Temporary or permanent failure on startup of ', agent.source, ' -> ',
          agent.target, '. Terminating since "insist" is not set.')
      return 'die'
    elseif rc == 'die' then
      log('Error', 'Failure on startup of ', agent.source, ' -> ', agent.target, '.')
      return 'die'
    end
    log('Error', 'Unknown exitcode "', exitcode, '" on startup of ', agent.source, ' -> ',
        agent.target, '.')
    return 'die'
  end
  if agent.isList then
    if rc == 'ok' then log('Normal', 'Finished a list after exitcode: ', exitcode)
    elseif rc == 'again' then log('Normal', 'Retrying a list after exitcode = ', exitcode)
    elseif rc == 'die' then log('Error', 'Failure with a list with exitcode = ', exitcode)
    else
      log('Error', 'Unknown exitcode "', exitcode, '" with a list')
      rc = 'die'
    end
  else
    if rc == 'ok' then
      log('Normal', 'Finished ', agent.etype, ' on ', agent.sourcePath, ' = ', exitcode)
    elseif rc == 'again' then
      log('Normal', 'Retrying ', agent.etype, ' on ', agent.sourcePath, ' = ', exitcode)
    elseif rc == 'die' then
      log('Error', 'Failure with ', agent.etype, ' on ', agent.sourcePath, ' = ', exitcode)
    else
      log('Normal', 'Unknown exitcode "', exitcode, '" with ', agent.etype, ' on ',
          agent.sourcePath, ' = ', exitcode)
      rc = 'die'
    end
  end
  return rc
end

local function default_init(event)
  local config = event.config
  if type(config.onStartup) == 'function' then config.onStartup(event) end
  if event.status == 'wait' then event.inlet.discardEvent(event) end
end

local gauge = {
  action = true, checkgauge = true, collect = true, delay = true, exitcodes = true, init = true,
  maxDelays = true, maxProcesses = true, onAttrib = true, onCreate = true, onModify = true,
  onDelete = true, onStartup = true, onMove = true, prepare = true, source = true,
  target = true,
  -- syncd reads these for every sync.
  name = true, exclude = true, excludeFrom = true, filter = true, filterFrom = true,
}

local function check(config, g, prefix)
  for k, v in pairs(config) do
    if type(k) == 'string' and not k:match('^_') then
      if not g[k] then
        error('Parameter "' .. prefix .. k .. '" unknown. ( if this is not a typo add it to '
              .. 'checkgauge )', 0)
      end
      if type(g[k]) == 'table' and type(v) == 'table' then check(v, g[k], prefix .. k .. '.') end
    end
  end
end

local function default_prepare(config)
  if config.checkgauge == false or config._syncd_kind then return end
  local g = {}
  for k, v in pairs(gauge) do g[k] = v end
  for k, v in pairs(config.checkgauge or {}) do g[k] = v end
  check(config, g, '')
end

default.action, default.collect, default.init, default.prepare = default_action,
    default_collect, default_init, default_prepare
default.maxDelays, default.maxProcesses, default.checkgauge = 1000, 1, gauge

---------------------------------------------------------------------------------------------
-- default.rsync, default.rsyncssh and default.direct under custom layers: their action and
-- init hand the events to syncd's own engine (the replication to the target), which reports
-- back to collect() like a process that exited with 0 once they are durable there. They are
-- reached through the layers' metatables, so a sync{} that overrides nothing does not see
-- them and runs the engine alone.
local function engine_action(inlet)
  local sync = inlets[inlet]
  local list = getdelays(sync, function(e) return e.etype ~= 'Init' and e.etype ~= 'Blanket' end)
  if #list == 0 then return end
  local etypes, paths, paths2 = {}, {}, {}
  for i, d in ipairs(list) do
    etypes[i], paths[i], paths2[i] = d.etype, d.path, d.path2 or false
  end
  local pid = host.feed(sync.owner, etypes, paths, paths2)
  sync.processes[pid] = list
  sync.nprocesses = sync.nprocesses + 1
  for _, d in ipairs(list) do d.status = 'active' end
end

local function engine_init(event)
  local d = e2d[event]
  local pid = host.engine_start(d.sync.owner)
  d.sync.processes[pid] = d
  d.sync.nprocesses = d.sync.nprocesses + 1
  d.status = 'active'
end

local function keys(...)
  local t = {}
  for _, k in ipairs({ ... }) do t[k] = true end
  return t
end
local engine_gauge = keys('action', 'checkgauge', 'collect', 'delay', 'exitcodes', 'init',
  'maxDelays', 'maxProcesses', 'prepare', 'source', 'target', 'name', 'delete', 'exclude',
  'excludeFrom', 'filter', 'filterFrom', 'rsync', 'deleteHold', 'onMove', 'onAttrib')
local rsync_gauge = engine_gauge
local rsyncssh_gauge = keys('host', 'targetdir', 'ssh')
local direct_gauge = keys()
for k in pairs(engine_gauge) do rsyncssh_gauge[k], direct_gauge[k] = true, true end
rsyncssh_gauge.target = nil

default.rsyncExitCodes = { [0] = 'ok', [1] = 'die', [2] = 'die', [3] = 'again', [4] = 'die',
  [5] = 'again', [6] = 'again', [10] = 'again', [11] = 'again', [12] = 'again', [14] = 'again',
  [20] = 'again', [21] = 'again', [22] = 'again', [23] = 'ok', [24] = 'ok', [25] = 'die',
  [30] = 'again', [35] = 'again', [255] = 'again' }
default.sshExitCodes = { [0] = 'ok', [255] = 'again' }

for name, g in pairs({ rsync = rsync_gauge, rsyncssh = rsyncssh_gauge, direct = direct_gauge }) do
  setmetatable(default[name], { __index = {
    action = engine_action, init = engine_init, collect = default_collect,
    prepare = function() end, checkgauge = g, maxDelays = 1000, maxProcesses = 1,
    exitcodes = default.rsyncExitCodes, rsyncExitCodes = default.rsyncExitCodes,
  } })
end

---------------------------------------------------------------------------------------------
-- What syncd (C++) calls.

-- The config as lsyncd completes it: inherited defaults (from the default layer beneath it,
-- or lsyncd's `default`), layer-3 strings as functions, prepare() run. Errors are the
-- configuration's.
function R.prepare(config)
  local base = config._syncd_kind and default[config._syncd_kind] or default
  for _, k in ipairs(inherited) do
    if config[k] == nil then config[k] = base[k] end
  end
  if config._syncd_kind and config.exitcodes == nil then config.exitcodes = base.exitcodes end
  -- A gauge may list other gauges (lsyncd's inheritance): their keys count too.
  if type(config.checkgauge) == 'table' then
    local g = {}
    for k, v in pairs(config.checkgauge) do
      if type(k) == 'number' and type(v) == 'table' then
        for kk, vv in pairs(v) do g[kk] = vv end
      end
    end
    for k, v in pairs(config.checkgauge) do
      if type(k) ~= 'number' then g[k] = v end
    end
    config.checkgauge = g
  end
  for _, k in ipairs({ 'onAttrib', 'onCreate', 'onModify', 'onDelete', 'onMove', 'onStartup' }) do
    if type(config[k]) == 'string' then config[k] = translate(config[k]) end
  end
  if type(config.prepare) == 'function' then config.prepare(config, 2) end
end

function R.new(config, source, owner, excludes)
  local sync = { config = config, source = source, owner = owner, delays = {},
                 processes = {}, nprocesses = 0, excludes = {}, config_excludes = excludes }
  sync.inlet = setmetatable({}, inletmeta)
  inlets[sync.inlet] = sync
  return sync
end

function R.event(sync, etype, time, path, path2) queue(sync, etype, time, path, path2) end

function R.startup(sync)
  if sync.config.init == false then return end
  local d = newdelay(sync, 'Init', true, '')
  if #sync.delays > 0 then stack(sync.delays[#sync.delays], d) end
  table.insert(sync.delays, d)
end

-- Runs the actions whose time has come (lsyncd's invokeActions).
function R.invoke(sync, time)
  if sync.nprocesses >= sync.config.maxProcesses then return end
  local seen = {}
  local i = 1
  while i <= #sync.delays do
    local d = sync.delays[i]
    if #sync.delays < sync.config.maxDelays and d.alarm ~= true and time < d.alarm then return end
    if d.status == 'wait' and not seen[d] then
      seen[d] = true
      if d.etype ~= 'Init' then
        sync.config.action(sync.inlet)
      else
        sync.config.init(d2e(d))
      end
      if sync.nprocesses >= sync.config.maxProcesses then return end
      i = 1  -- The action may have taken or dropped delays: look again from the start.
    else
      i = i + 1
    end
  end
end

-- When R.invoke should run next: true (now), a time, or false (on the next event).
function R.alarm(sync)
  if sync.nprocesses >= sync.config.maxProcesses then return false end
  for _, d in ipairs(sync.delays) do
    if d.status == 'wait' then
      if #sync.delays >= sync.config.maxDelays then return true end
      return d.alarm
    end
  end
  return false
end

-- A process of this sync ended. Returns 'die' when the sync must stop.
function R.collect(sync, pid, exitcode)
  local d = sync.processes[pid]
  if not d then return end
  sync.processes[pid] = nil
  sync.nprocesses = sync.nprocesses - 1
  local retry = math.max(sync.config.delay or 0, 1)
  if d.status then
    local rc = sync.config.collect(d2e(d), exitcode)
    if rc == 'die' then return 'die' end
    if rc ~= 'again' then
      removedelay(sync, d)
    else
      d.status, d.alarm = 'wait', host.now() + retry
    end
    return rc
  end
  local rc = sync.config.collect(dl2el(d), exitcode)
  if rc == 'die' then return 'die' end
  if rc == 'again' then
    local alarm = host.now() + retry
    for _, x in ipairs(d) do x.status, x.alarm = 'wait', alarm end
  else
    for _, x in ipairs(d) do removedelay(sync, x) end
  end
  return rc
end

-- Queued delays, running processes, and whether the startup (Init) is still queued.
function R.counts(sync)
  local starting = false
  for _, d in ipairs(sync.delays) do
    if d.etype == 'Init' then starting = true end
  end
  return #sync.delays, sync.nprocesses, starting
end

-- Everything waiting is due now (`syncd flush`).
function R.hurry(sync)
  for _, d in ipairs(sync.delays) do
    if d.status == 'wait' then d.alarm = true end
  end
end

return R
)lua";

const size_t kLayerRuntimeSize = sizeof kLayerRuntime - 1;

}  // namespace syncd::lua

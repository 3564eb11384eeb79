-- Argo CD health check for iaprun.dev/IapRunService, following kstatus
-- (sigs.k8s.io/cli-utils/pkg/kstatus), the same conventions `kubectl wait` and Flux read:
--   deletionTimestamp set                        -> Progressing (the finalizer is deleting or abandoning the service)
--   status.observedGeneration != generation      -> Progressing (the operator has not seen this spec yet)
--   Reconciling=True                             -> Progressing (a rollout, a retry after a transient error)
--   Stalled=True                                 -> Degraded    (only a spec, permission or policy change helps)
--   Ready=True (computed for this generation)    -> Healthy
--   anything else                                -> Progressing
-- Install: argocd-cm key resource.customizations.health.iaprun.dev_IapRunService (docs/gitops.md).
-- Test cases: health_test.yaml and testdata/ beside this file, run by tests/docs/test_argocd_health.py.
local hs = { status = "Progressing", message = "Waiting for the operator to reconcile the object" }

local function condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c)
  local text = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    if text ~= "" then
      text = text .. ": "
    end
    text = text .. c.message
  end
  return text
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Pending deletion"
  if obj.metadata.finalizers ~= nil and #obj.metadata.finalizers > 0 then
    hs.message = hs.message .. "; blocked by finalizers: " .. table.concat(obj.metadata.finalizers, ", ")
  end
  return hs
end

if obj.status == nil then
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if observed ~= nil and generation ~= nil and observed ~= generation then
  hs.message = "Waiting for the operator to observe generation " .. generation .. " (status is for " .. observed .. ")"
  return hs
end

local conditions = obj.status.conditions
local reconciling = condition(conditions, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling)
  return hs
end

local stalled = condition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
  return hs
end

local ready = condition(conditions, "Ready")
if ready ~= nil then
  if ready.status == "True" and (ready.observedGeneration == nil or generation == nil or ready.observedGeneration == generation) then
    hs.status = "Healthy"
    hs.message = ready.message or ""
    return hs
  end
  if ready.status ~= "True" then
    hs.message = describe(ready)
  end
end
return hs

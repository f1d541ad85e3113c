// The Graph fake lives in its own target (the demo uses it too); tests get it from here.
@_exported import LeadFlowGraphFake

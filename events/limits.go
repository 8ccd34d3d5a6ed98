package events

// TypeApplicationLimitsSet names an operator's override of an application's
// rate limits. Like every type name, it is part of the wire and storage
// contract.
const TypeApplicationLimitsSet = "ApplicationLimitsSet"

// ApplicationLimitsSet replaces an application's rate-limit override as a
// whole. It is an event of the application's stream, so its version comes
// from the application's, and a rebuild of the numbering state counts it. A
// nil field follows the configured default; 0 lifts that limit.
type ApplicationLimitsSet struct {
	Token string `json:"token"`
	// Commands and Reads are requests per second.
	Commands *int64 `json:"commands"`
	Reads    *int64 `json:"reads"`
	// Burst is how many seconds of its rate an idle budget holds.
	Burst *int64 `json:"burst"`
}

func (ApplicationLimitsSet) EventType() string { return TypeApplicationLimitsSet }

func (e ApplicationLimitsSet) StreamID() string { return ApplicationStream(e.Token) }

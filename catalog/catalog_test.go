package catalog

import "testing"

// TestNames pins the names: they are a namespace's data on four servers,
// and a build that spelt one differently would lose it.
func TestNames(t *testing.T) {
	t.Parallel()
	c := New("chat")
	live, next := c.ReadTables(), c.ReadTablesCopy("_next")
	for _, tc := range []struct{ got, want string }{
		{c.SchemaMigrations(), "chat_schema_migrations"},
		{c.Events(), "chat_events"},
		{c.Checkpoints(), "chat_checkpoints"},
		{c.SearchParked(), "chat_search_parked"},
		{c.DoctorProbe(), "chat_doctor_probe"},
		{live.Applications, "chat_applications"},
		{live.Chats, "chat_chats"},
		{live.Messages, "chat_messages"},
		{live.Position, "chat_read_position"},
		{next.Position, "chat_read_position_next"},
		{c.MigrateLock(), "chat.migrate"},
		{c.NumberingLock(), "chat.numbering"},
		{c.ReplayLock("mysql"), "chat.replay.mysql"},
		{c.DoctorLock("ab12"), "chat.doctor.ab12"},
		{c.Exchange(), "chat.events"},
		{c.StoreQueue(0), "chat.eventstore"},
		{c.StoreQueue(7), "chat.eventstore.7"},
		{c.DeadQueue(), "chat.eventstore.dead"},
		{c.SearchAlias(), "chat-messages"},
		{c.DoctorSearchAlias("ab12"), "chat-doctor-ab12"},
		{IndexVersion(c.SearchAlias(), 2), "chat-messages-v2"},
		{IndexVersions(c.SearchAlias()), "chat-messages-v*"},
		{c.RedisPrefix(), "chat:"},
		{c.RedisKeys(), "chat:*"},
		{c.AppKey("tok"), "chat:app:{tok}"},
		{c.ChatKey("tok", 3), "chat:chat:{tok}:3"},
		{c.FailedKey("tok", 3), "chat:failed:{tok}:3"},
		{c.EditsKey("tok", 3), "chat:edits:{tok}:3"},
		{c.EpochKey(0), "chat:epoch:{1bz}"},
		{c.EpochKeyOf(c.ChatKey("tok", 3)), "chat:epoch:{8n3}"}, // the slot of {tok}
		{c.IdempotencyIndex("tok"), "chat:idem:{tok}"},
		{c.IdempotencyIndex(""), "chat:idem:{chat:applications}"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if len(live.All()) != 4 {
		t.Errorf("a set of read tables has %d tables, want 4", len(live.All()))
	}
}

func TestVersionOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		index string
		want  int
		ok    bool
	}{
		{"chat-messages-v1", 1, true},
		{"chat-messages-v12", 12, true},
		{"chat-messages", 0, false},
		{"chat-messages-vx", 0, false},
		{"other-messages-v1", 0, false},
	} {
		if v, ok := VersionOf("chat-messages", tc.index); v != tc.want || ok != tc.ok {
			t.Errorf("VersionOf(%q) = %d, %v; want %d, %v", tc.index, v, ok, tc.want, tc.ok)
		}
	}
}

package localapi_test

import (
	"context"
	"errors"
	"testing"

	"github.com/credagent/credagent/agent/localapi/client"
)

// Without a feed, sync says so (404) rather than pretending to poll. The
// daemon's feed test covers a sync that polls.
func TestSyncWithoutFeed(t *testing.T) {
	h := start(t, setup{})
	_, err := h.client.Sync(context.Background())
	var e *client.Error
	if !errors.As(err, &e) || e.HTTPStatus != 404 {
		t.Fatalf("sync without a feed: %v", err)
	}
}

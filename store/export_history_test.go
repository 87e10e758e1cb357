package store

import (
	"context"
	"fmt"
	"reflect"

	"github.com/personad/personad/engine"
)

// CheckHistoryCache compares every inquiry log the writer's parsed-history
// cache holds with the log as the file holds it, parsed afresh, and
// returns how many logs it compared and how many re-folds read and parsed
// a log so far.
func CheckHistoryCache(db *DB) (cached int, misses int64, err error) {
	err = db.writer.do(context.Background(), func(t *tx) error {
		logs := make(map[string][]*engine.Event)
		t.cache.hist.all(func(id string, events []*engine.Event) { logs[id] = events })
		for id, events := range logs {
			recs, err := t.InquiryEvents(id)
			if err != nil {
				return err
			}
			fresh, err := engine.ParseRecords(recs)
			if err != nil {
				return err
			}
			if len(fresh) != len(events) {
				return fmt.Errorf("inquiry %s: %d events cached, %d stored", id, len(events), len(fresh))
			}
			for i := range fresh {
				if !reflect.DeepEqual(fresh[i], events[i]) {
					return fmt.Errorf("inquiry %s, event %d:\ncached %+v\nstored %+v", id, i, *events[i], *fresh[i])
				}
			}
			cached++
		}
		if n := countEvents(logs); n != t.cache.hist.weight {
			return fmt.Errorf("the cache counts %d events and holds %d", t.cache.hist.weight, n)
		}
		misses = t.cache.histMisses
		return nil
	})
	return cached, misses, err
}

func countEvents(hist map[string][]*engine.Event) (n int) {
	for _, events := range hist {
		n += len(events)
	}
	return n
}

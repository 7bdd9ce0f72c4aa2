// A closed-loop put/range load generator in Go, on etcd's own client (clientv3), for the store
// benchmark's --generator go. It takes the same LoadSpec JSON as bench/grpc-load.ts and prints the
// same LoadResult JSON (with the same log-linear histogram buckets) as its last line, so the
// orchestrator reads both alike. Why a second generator: the Node.js one costs about 130 µs of CPU
// per request, so at 1000 clients on two cores it is the bottleneck for both systems, and the
// benchmark then measures the generator, not the server. This one costs a fraction of that, like
// etcd's own `benchmark` tool, which is built on the same client.
//
// Built by scripts/build-go-load.sh from Debian's packaged sources (golang-go,
// golang-etcd-server-dev), in GOPATH mode, offline.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/bits"
	mathrand "math/rand"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
)

type loadSpec struct {
	Endpoint          string  `json:"endpoint"`
	Op                string  `json:"op"`
	Clients           int     `json:"clients"`
	ClientsPerChannel int     `json:"clientsPerChannel"`
	WarmupSeconds     float64 `json:"warmupSeconds"`
	Seconds           float64 `json:"seconds"`
	KeyCount          int     `json:"keyCount"`
	KeySizeBytes      int     `json:"keySizeBytes"`
	ValueSizeBytes    int     `json:"valueSizeBytes"`
	RequestTimeoutMs  int     `json:"requestTimeoutMs"`
}

type histogramJSON struct {
	Buckets    [][2]int64 `json:"buckets"`
	TotalCount int64      `json:"totalCount"`
	MinUs      int64      `json:"minUs"`
	MaxUs      int64      `json:"maxUs"`
}

type loadResult struct {
	Op                string        `json:"op"`
	Clients           int           `json:"clients"`
	Channels          int           `json:"channels"`
	MeasuredSeconds   float64       `json:"measuredSeconds"`
	Completed         int64         `json:"completed"`
	OpsPerSecond      float64       `json:"opsPerSecond"`
	Errors            int64         `json:"errors"`
	ErrorSamples      []string      `json:"errorSamples"`
	Histogram         histogramJSON `json:"histogram"`
	PreloadSeconds    float64       `json:"preloadSeconds"`
	GeneratorCpuCores float64       `json:"generatorCpuCores"`
}

// The histogram's layout is latency-histogram.ts's: 64 linear buckets per power of two of
// microseconds, values clamped to 2^31-1.
const subBucketBits = 6
const subBuckets = 1 << subBucketBits
const latencyUsMax = 1<<31 - 1
const errorSamplesMax = 5
const preloadPutsPerTxn = 100
const preloadTxnsInFlight = 16
const connectTimeout = 10 * time.Second

func bucketIndexOf(valueUs int64) int {
	if valueUs < subBuckets {
		return int(valueUs)
	}
	shift := bits.Len64(uint64(valueUs)) - 1 - subBucketBits
	mantissa := valueUs >> shift
	return (shift+1)*subBuckets + int(mantissa-subBuckets)
}

// bucketCount is the size of a histogram's counts: the index of the bucket that holds latencyUsMax, plus one.
var bucketCount = bucketIndexOf(latencyUsMax) + 1

type histogram struct {
	counts []int64
	total  int64
	minUs  int64
	maxUs  int64
}

func (h *histogram) record(latency time.Duration) {
	valueUs := latency.Round(time.Microsecond).Microseconds()
	if valueUs > latencyUsMax {
		valueUs = latencyUsMax
	}
	h.counts[bucketIndexOf(valueUs)]++
	if h.total == 0 || valueUs < h.minUs {
		h.minUs = valueUs
	}
	if valueUs > h.maxUs {
		h.maxUs = valueUs
	}
	h.total++
}

func (h *histogram) merge(other *histogram) {
	for index, count := range other.counts {
		h.counts[index] += count
	}
	if other.total > 0 && (h.total == 0 || other.minUs < h.minUs) {
		h.minUs = other.minUs
	}
	if other.maxUs > h.maxUs {
		h.maxUs = other.maxUs
	}
	h.total += other.total
}

func (h *histogram) toJSON() histogramJSON {
	buckets := [][2]int64{}
	for index, count := range h.counts {
		if count > 0 {
			buckets = append(buckets, [2]int64{int64(index), count})
		}
	}
	return histogramJSON{Buckets: buckets, TotalCount: h.total, MinUs: h.minUs, MaxUs: h.maxUs}
}

func newHistogram() *histogram { return &histogram{counts: make([]int64, bucketCount)} }

func validate(spec loadSpec) error {
	if spec.Op != "put" && spec.Op != "range" {
		return fmt.Errorf("load spec: op must be put or range, got %q", spec.Op)
	}
	if spec.Clients <= 0 || spec.ClientsPerChannel <= 0 || spec.Seconds <= 0 || spec.KeyCount <= 0 ||
		spec.KeySizeBytes <= 0 || spec.ValueSizeBytes <= 0 || spec.RequestTimeoutMs <= 0 || spec.WarmupSeconds < 0 {
		return fmt.Errorf("load spec: clients, clientsPerChannel, seconds, keyCount, keySizeBytes, valueSizeBytes and requestTimeoutMs must be positive, warmupSeconds at least 0")
	}
	if len(fmt.Sprint(spec.KeyCount-1)) > spec.KeySizeBytes {
		return fmt.Errorf("load spec: %d keys do not fit in %d-byte keys; raise the key size or lower the key count", spec.KeyCount, spec.KeySizeBytes)
	}
	return nil
}

// Keys are the key's number in zero-padded decimal, as grpc-load.ts makes them.
func keyOf(index int, size int) string {
	return fmt.Sprintf("%0*d", size, index)
}

func processCPU() time.Duration {
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

func connect(spec loadSpec, channelCount int) ([]*clientv3.Client, error) {
	endpoints := strings.Split(spec.Endpoint, ",")
	channels := make([]*clientv3.Client, 0, channelCount)
	for index := 0; index < channelCount; index++ {
		client, err := clientv3.New(clientv3.Config{
			Endpoints:          []string{endpoints[index%len(endpoints)]},
			DialTimeout:        connectTimeout,
			MaxCallSendMsgSize: 2 * 1024 * 1024,
		})
		if err != nil {
			closeAll(channels)
			return nil, fmt.Errorf("cannot connect to %s: %w", endpoints[index%len(endpoints)], err)
		}
		channels = append(channels, client)
	}
	return channels, nil
}

func closeAll(channels []*clientv3.Client) {
	for _, client := range channels {
		client.Close()
	}
}

func preload(client *clientv3.Client, spec loadSpec, keys []string, value string) error {
	next := make(chan int)
	errs := make(chan error, preloadTxnsInFlight)
	var wg sync.WaitGroup
	for worker := 0; worker < preloadTxnsInFlight; worker++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range next {
				ops := []clientv3.Op{}
				for index := first; index < first+preloadPutsPerTxn && index < len(keys); index++ {
					ops = append(ops, clientv3.OpPut(keys[index], value))
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(spec.RequestTimeoutMs)*time.Millisecond)
				_, err := client.Txn(ctx).Then(ops...).Commit()
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for first := 0; first < len(keys); first += preloadPutsPerTxn {
		select {
		case next <- first:
		case err := <-errs:
			close(next)
			wg.Wait()
			return fmt.Errorf("preload failed: %w", err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("preload failed: %w", err)
	default:
		return nil
	}
}

type clientTally struct {
	histogram *histogram
	completed int64
	errors    int64
	samples   []string
}

func logicalClient(client *clientv3.Client, spec loadSpec, keys []string, value string, measureFrom, measureUntil time.Time, seed int64) *clientTally {
	tally := &clientTally{histogram: newHistogram()}
	random := mathrand.New(mathrand.NewSource(seed))
	timeout := time.Duration(spec.RequestTimeoutMs) * time.Millisecond
	for time.Now().Before(measureUntil) {
		key := keys[random.Intn(len(keys))]
		sent := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		var err error
		if spec.Op == "put" {
			_, err = client.Put(ctx, key, value)
		} else {
			_, err = client.Get(ctx, key)
		}
		cancel()
		done := time.Now()
		if sent.Before(measureFrom) {
			continue
		}
		if err != nil {
			tally.errors++
			if len(tally.samples) < errorSamplesMax {
				tally.samples = append(tally.samples, err.Error())
			}
			continue
		}
		tally.histogram.record(done.Sub(sent))
		if !done.After(measureUntil) {
			tally.completed++
		}
	}
	return tally
}

func run(spec loadSpec) (loadResult, error) {
	if err := validate(spec); err != nil {
		return loadResult{}, err
	}
	channelCount := (spec.Clients + spec.ClientsPerChannel - 1) / spec.ClientsPerChannel
	channels, err := connect(spec, channelCount)
	if err != nil {
		return loadResult{}, err
	}
	defer closeAll(channels)
	valueBytes := make([]byte, spec.ValueSizeBytes)
	rand.Read(valueBytes)
	value := string(valueBytes)
	keys := make([]string, spec.KeyCount)
	for index := range keys {
		keys[index] = keyOf(index, spec.KeySizeBytes)
	}
	preloadStarted := time.Now()
	if spec.Op == "range" {
		if err := preload(channels[0], spec, keys, value); err != nil {
			return loadResult{}, err
		}
	}
	preloadSeconds := time.Since(preloadStarted).Seconds()

	cpuBefore := processCPU()
	startedAt := time.Now()
	measureFrom := startedAt.Add(time.Duration(spec.WarmupSeconds * float64(time.Second)))
	measureUntil := measureFrom.Add(time.Duration(spec.Seconds * float64(time.Second)))
	tallies := make([]*clientTally, spec.Clients)
	var wg sync.WaitGroup
	for index := 0; index < spec.Clients; index++ {
		wg.Add(1)
		go func(index int) {
			defer wg.Done()
			tallies[index] = logicalClient(channels[index/spec.ClientsPerChannel], spec, keys, value, measureFrom, measureUntil, int64(index)+startedAt.UnixNano())
		}(index)
	}
	wg.Wait()
	cpuCores := (processCPU() - cpuBefore).Seconds() / time.Since(startedAt).Seconds()

	result := loadResult{Op: spec.Op, Clients: spec.Clients, Channels: channelCount, MeasuredSeconds: spec.Seconds,
		ErrorSamples: []string{}, PreloadSeconds: preloadSeconds, GeneratorCpuCores: cpuCores}
	merged := newHistogram()
	for _, tally := range tallies {
		merged.merge(tally.histogram)
		result.Completed += tally.completed
		result.Errors += tally.errors
		for _, sample := range tally.samples {
			if len(result.ErrorSamples) < errorSamplesMax {
				result.ErrorSamples = append(result.ErrorSamples, sample)
			}
		}
	}
	result.Histogram = merged.toJSON()
	result.OpsPerSecond = float64(result.Completed) / spec.Seconds
	return result, nil
}

// printBucketIndexes answers `--bucket-indexes V1,V2,...` (microseconds) with each value's bucket
// index, one per line: the test compares them with latency-histogram.ts's, so both generators'
// histograms mean the same thing.
func printBucketIndexes(list string) error {
	for _, field := range strings.Split(list, ",") {
		var valueUs int64
		if _, err := fmt.Sscan(field, &valueUs); err != nil || valueUs < 0 || valueUs > latencyUsMax {
			return fmt.Errorf("--bucket-indexes: %q is not a whole number of microseconds in [0, %d]", field, latencyUsMax)
		}
		fmt.Println(bucketIndexOf(valueUs))
	}
	return nil
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "--bucket-indexes" {
		if err := printBucketIndexes(os.Args[2]); err != nil {
			fmt.Fprintf(os.Stderr, "go-load: %v\n", err)
			os.Exit(2)
		}
		return
	}
	if len(os.Args) != 3 || os.Args[1] != "--spec" {
		fmt.Fprintln(os.Stderr, `usage: go-load --spec '{"endpoint":"127.0.0.1:2379","op":"put",...}' (see LoadSpec in bench/grpc-load.ts)`)
		os.Exit(2)
	}
	var spec loadSpec
	decoder := json.NewDecoder(strings.NewReader(os.Args[2]))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&spec); err != nil {
		fmt.Fprintf(os.Stderr, "go-load: the spec is not valid JSON of a LoadSpec: %v\n", err)
		os.Exit(2)
	}
	result, err := run(spec)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-load: %v\n", err)
		os.Exit(1)
	}
	line, _ := json.Marshal(result)
	fmt.Println(string(line))
}

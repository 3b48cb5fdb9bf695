package verifyclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	verifyclient "cognito-verify.invalid/clients/go"
	verifyv1 "cognito-verify.invalid/clients/go/gen/cognito/verify/v1"
)

// call is what the fake service saw of one call.
type call struct {
	requestID string
	token     string
	code      string
	left      time.Duration // until the call's deadline, as the server saw it
	hasLeft   bool
	at        time.Time
}

// fake answers each call with the next of its errors (nil: success), then
// with success; it records every call.
type fake struct {
	verifyv1.UnimplementedUserAttributeVerificationServiceServer
	mu     sync.Mutex
	errs   []error
	always error // answered when errs is spent, if set
	calls  []call
}

func (f *fake) next(ctx context.Context, c call) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.at = time.Now()
	if d, ok := ctx.Deadline(); ok {
		c.left, c.hasLeft = time.Until(d), true
	}
	f.calls = append(f.calls, c)
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return err
	}
	return f.always
}

func (f *fake) seen() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func (f *fake) GetUserAttributeVerificationCode(ctx context.Context, r *verifyv1.GetUserAttributeVerificationCodeRequest) (*verifyv1.GetUserAttributeVerificationCodeResponse, error) {
	if err := f.next(ctx, call{requestID: r.GetRequestId(), token: r.GetAccessToken()}); err != nil {
		return nil, err
	}
	return &verifyv1.GetUserAttributeVerificationCodeResponse{CodeDeliveryDetails: &verifyv1.CodeDeliveryDetails{
		Destination: "u***@example.com", DeliveryMedium: verifyv1.DeliveryMedium_DELIVERY_MEDIUM_EMAIL, AttributeName: r.GetAttributeName(),
	}}, nil
}

func (f *fake) VerifyUserAttribute(ctx context.Context, r *verifyv1.VerifyUserAttributeRequest) (*verifyv1.VerifyUserAttributeResponse, error) {
	if err := f.next(ctx, call{token: r.GetAccessToken(), code: r.GetCode()}); err != nil {
		return nil, err
	}
	return &verifyv1.VerifyUserAttributeResponse{}, nil
}

func (f *fake) GetVerificationStatus(ctx context.Context, r *verifyv1.GetVerificationStatusRequest) (*verifyv1.GetVerificationStatusResponse, error) {
	if err := f.next(ctx, call{token: r.GetAccessToken()}); err != nil {
		return nil, err
	}
	sendsLeft := uint32(4)
	return &verifyv1.GetVerificationStatusResponse{
		Attributes: []*verifyv1.AttributeStatus{
			{AttributeName: "email", Present: true, Destination: "u***@e***", DeliveryMedium: verifyv1.DeliveryMedium_DELIVERY_MEDIUM_EMAIL, Verified: true},
			{AttributeName: "phone_number"},
		},
		SendsLeft: &sendsLeft,
	}, nil
}

// serve starts a real gRPC server on 127.0.0.1:0 with f; returns its address.
func serve(t *testing.T, f *fake, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	verifyv1.RegisterUserAttributeVerificationServiceServer(srv, f)
	go srv.Serve(lis) //nolint:errcheck // ends with Stop
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// client dials addr in plaintext and returns a Client over it.
func client(t *testing.T, addr string, opts ...verifyclient.ClientOption) *verifyclient.Client {
	t.Helper()
	conn, err := verifyclient.Dial(addr, verifyclient.Options{Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return verifyclient.New(conn, opts...)
}

// rich is a status error with details, as the service sends them.
func rich(t *testing.T, code codes.Code, msg string, details ...proto.Message) error {
	t.Helper()
	st, err := status.New(code, msg).WithDetails(details...)
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

func info(reason, domain string, md map[string]string) *errdetails.ErrorInfo {
	return &errdetails.ErrorInfo{Reason: reason, Domain: domain, Metadata: md}
}

func retry(d time.Duration) *errdetails.RetryInfo {
	return &errdetails.RetryInfo{RetryDelay: durationpb.New(d)}
}

func asError(t *testing.T, err error) *verifyclient.Error {
	t.Helper()
	var e *verifyclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("not an *Error: %T %v", err, err)
	}
	return e
}

func TestDecodesReasonRetryAndQuota(t *testing.T) {
	f := &fake{errs: []error{rich(t, codes.ResourceExhausted, "wait 1.5 s",
		info("SEND_COOLDOWN", "cognito-verify", map[string]string{"attribute": "email"}),
		retry(1500*time.Millisecond),
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "user:attribute", Description: "wait"}}},
	)}}
	_, err := client(t, serve(t, f)).GetUserAttributeVerificationCode(context.Background(), "t", "email")
	e := asError(t, err)
	if e.Code != codes.ResourceExhausted || e.CodeName() != "RESOURCE_EXHAUSTED" || e.Message != "wait 1.5 s" {
		t.Errorf("code/message: %v %q %q", e.Code, e.CodeName(), e.Message)
	}
	if e.Reason != verifyv1.ErrorReason_SEND_COOLDOWN || e.ReasonName != "SEND_COOLDOWN" || e.Domain != "cognito-verify" {
		t.Errorf("reason: %v %q %q", e.Reason, e.ReasonName, e.Domain)
	}
	if len(e.Metadata) != 1 || e.Metadata["attribute"] != "email" {
		t.Errorf("metadata: %v", e.Metadata)
	}
	if !e.HasRetryAfter || e.RetryAfter != 1500*time.Millisecond {
		t.Errorf("retry after: %v %v", e.HasRetryAfter, e.RetryAfter)
	}
	if len(e.QuotaViolations) != 1 || e.QuotaViolations[0] != (verifyclient.QuotaViolation{Subject: "user:attribute", Description: "wait"}) {
		t.Errorf("quota: %v", e.QuotaViolations)
	}
	if len(e.FieldViolations) != 0 {
		t.Errorf("fields: %v", e.FieldViolations)
	}
	if s := e.Error(); s != "RESOURCE_EXHAUSTED: wait 1.5 s [SEND_COOLDOWN] (retry after 1.500 s)" {
		t.Errorf("Error(): %q", s)
	}
	if status.Code(err) != codes.ResourceExhausted || len(status.Convert(err).Details()) != 3 {
		t.Errorf("status.Convert: %v", status.Convert(err))
	}
	// No request ID: a send is never retried, whatever the status says.
	if n := len(f.seen()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

func TestDecodesFieldViolations(t *testing.T) {
	f := &fake{errs: []error{rich(t, codes.InvalidArgument, "wrong code",
		info("CODE_MISMATCH", "cognito-idp.amazonaws.com", map[string]string{"awsErrorCode": "CodeMismatchException"}),
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "code", Description: "does not match"}}},
	)}}
	_, err := client(t, serve(t, f)).VerifyUserAttribute(context.Background(), "t", "email", "123456")
	e := asError(t, err)
	if e.Reason != verifyv1.ErrorReason_CODE_MISMATCH || e.Domain != "cognito-idp.amazonaws.com" {
		t.Errorf("reason: %v %q", e.Reason, e.Domain)
	}
	if len(e.FieldViolations) != 1 || e.FieldViolations[0] != (verifyclient.FieldViolation{Field: "code", Description: "does not match"}) {
		t.Errorf("fields: %v", e.FieldViolations)
	}
	if e.HasRetryAfter || e.RetryAfter != 0 {
		t.Errorf("retry after: %v %v", e.HasRetryAfter, e.RetryAfter)
	}
	if n := len(f.seen()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

func TestUnknownReasonKeepsTheString(t *testing.T) {
	f := &fake{errs: []error{rich(t, codes.Unknown, "?",
		info("BRAND_NEW", "cognito-idp.amazonaws.com", map[string]string{"awsErrorCode": "BrandNewException"}))}}
	_, err := client(t, serve(t, f)).VerifyUserAttribute(context.Background(), "t", "email", "1")
	e := asError(t, err)
	if e.Reason != verifyv1.ErrorReason_ERROR_REASON_UNSPECIFIED || e.ReasonName != "BRAND_NEW" || e.Metadata["awsErrorCode"] != "BrandNewException" {
		t.Errorf("%v %q %v", e.Reason, e.ReasonName, e.Metadata)
	}
}

func TestZeroRetryDelayIsStillRetryInfo(t *testing.T) {
	st, err := status.New(codes.Aborted, "again").WithDetails(info("REQUEST_IN_PROGRESS", "cognito-verify", nil), retry(0))
	if err != nil {
		t.Fatal(err)
	}
	if e := verifyclient.FromStatus(st); !e.HasRetryAfter || e.RetryAfter != 0 || e.Reason != verifyv1.ErrorReason_REQUEST_IN_PROGRESS {
		t.Errorf("%#v", e)
	}
}

func TestTransportErrorHasNoDetails(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	_, err = client(t, addr).GetUserAttributeVerificationCode(context.Background(), "t", "email", verifyclient.WithRequestID("r1"))
	e := asError(t, err)
	if e.Code != codes.Unavailable || e.ReasonName != "" || e.Reason != 0 || e.HasRetryAfter || e.Metadata != nil {
		t.Errorf("%#v", e)
	}
}

func TestFromErrorOfAPlainError(t *testing.T) {
	e := verifyclient.FromError(errors.New("boom"))
	if e.Code != codes.Unknown || e.Message != "boom" {
		t.Errorf("%#v", e)
	}
	if verifyclient.FromError(nil) != nil {
		t.Error("FromError(nil) is not nil")
	}
	if verifyclient.FromError(fmt.Errorf("wrapped: %w", e)) != e {
		t.Error("a wrapped *Error is not returned as it is")
	}
}

func overloaded(t *testing.T, wait time.Duration) error {
	return rich(t, codes.ResourceExhausted, "busy", info("OVERLOADED", "cognito-verify", nil), retry(wait))
}

func TestSendIsRetriedOnlyWithARequestID(t *testing.T) {
	f := &fake{errs: []error{overloaded(t, 20*time.Millisecond)}}
	c := client(t, serve(t, f))
	if _, err := c.GetUserAttributeVerificationCode(context.Background(), "t", "email"); err == nil {
		t.Fatal("no error without a request ID")
	}
	if n := len(f.seen()); n != 1 {
		t.Fatalf("%d attempts without a request ID, want 1", n)
	}

	f = &fake{errs: []error{overloaded(t, 20*time.Millisecond)}}
	c = client(t, serve(t, f))
	sent, err := c.GetUserAttributeVerificationCode(context.Background(), "t", "email",
		verifyclient.WithRequestID("r1"), verifyclient.WithClientMetadata(map[string]string{"k": "v"}))
	if err != nil {
		t.Fatal(err)
	}
	if sent.GetCodeDeliveryDetails().GetDeliveryMedium() != verifyv1.DeliveryMedium_DELIVERY_MEDIUM_EMAIL {
		t.Errorf("response: %v", sent)
	}
	calls := f.seen()
	if len(calls) != 2 || calls[0].requestID != "r1" || calls[1].requestID != "r1" {
		t.Fatalf("calls: %+v", calls)
	}
	if gap := calls[1].at.Sub(calls[0].at); gap < 20*time.Millisecond {
		t.Errorf("retried after %v, before the advised 20ms", gap)
	}
}

func TestSendIsNotRetriedWithoutRetryInfo(t *testing.T) {
	f := &fake{errs: []error{rich(t, codes.Unavailable, "cognito down", info("COGNITO_UNREACHABLE", "cognito-verify", nil))}}
	_, err := client(t, serve(t, f)).GetUserAttributeVerificationCode(context.Background(), "t", "email", verifyclient.WithRequestID("r1"))
	if asError(t, err).ReasonName != "COGNITO_UNREACHABLE" || len(f.seen()) != 1 {
		t.Errorf("%v after %d attempts", err, len(f.seen()))
	}
}

func TestVerifyIsRetriedOnlyBeforeCognito(t *testing.T) {
	for _, reason := range []string{"SIGNING_KEYS_UNAVAILABLE", "LIMITS_UNAVAILABLE", "RATE_LIMITED", "OVERLOADED", "USER_VERIFY_QUOTA"} {
		f := &fake{errs: []error{rich(t, codes.Unavailable, "later", info(reason, "cognito-verify", nil), retry(10*time.Millisecond))}}
		if _, err := client(t, serve(t, f)).VerifyUserAttribute(context.Background(), "t", "email", "1"); err != nil {
			t.Errorf("%s: not retried: %v", reason, err)
		}
		if n := len(f.seen()); n != 2 {
			t.Errorf("%s: %d attempts, want 2", reason, n)
		}
	}
	// With a RetryInfo, but Cognito was called (or may have been): once only.
	for _, reason := range []string{"TOO_MANY_REQUESTS", "SEND_COOLDOWN", "REQUEST_IN_PROGRESS", "CALLER_RATE_LIMITED", "BRAND_NEW"} {
		f := &fake{errs: []error{rich(t, codes.ResourceExhausted, "slow", info(reason, "cognito-verify", nil), retry(10*time.Millisecond))}}
		_, err := client(t, serve(t, f)).VerifyUserAttribute(context.Background(), "t", "email", "1")
		if err == nil || len(f.seen()) != 1 {
			t.Errorf("%s: %v after %d attempts, want an error after 1", reason, err, len(f.seen()))
		}
	}
	// A safe reason without RetryInfo: once only.
	f := &fake{errs: []error{rich(t, codes.ResourceExhausted, "busy", info("OVERLOADED", "cognito-verify", nil))}}
	if _, err := client(t, serve(t, f)).VerifyUserAttribute(context.Background(), "t", "email", "1"); err == nil || len(f.seen()) != 1 {
		t.Errorf("OVERLOADED without RetryInfo: %v after %d attempts", err, len(f.seen()))
	}
}

func TestStatusIsRetriedOnAnyRetryInfo(t *testing.T) {
	// Reasons a verify is not retried on (Cognito was, or may have been,
	// called): a status read consumes nothing, so it is retried on them.
	for _, tc := range []struct {
		code   codes.Code
		reason string
	}{{codes.Unavailable, "COGNITO_UNREACHABLE"}, {codes.ResourceExhausted, "TOO_MANY_REQUESTS"}, {codes.ResourceExhausted, "SMS_DAILY_LIMIT"}} {
		later := func() error {
			return rich(t, tc.code, "later", info(tc.reason, "cognito-verify", nil), retry(10*time.Millisecond))
		}
		f := &fake{errs: []error{later()}}
		if _, err := client(t, serve(t, f)).VerifyUserAttribute(context.Background(), "t", "email", "1"); err == nil || len(f.seen()) != 1 {
			t.Errorf("verify, %s: %v after %d attempts, want an error after 1", tc.reason, err, len(f.seen()))
		}
		f = &fake{errs: []error{later()}}
		st, err := client(t, serve(t, f)).GetVerificationStatus(context.Background(), "tok")
		if err != nil {
			t.Errorf("status, %s: not retried: %v", tc.reason, err)
			continue
		}
		if calls := f.seen(); len(calls) != 2 || calls[0].token != "tok" || calls[1].token != "tok" {
			t.Errorf("status, %s: calls %+v, want 2 with the token", tc.reason, calls)
		}
		email := st.GetAttributes()[0]
		if email.GetAttributeName() != "email" || !email.GetVerified() || st.SendsLeft == nil || st.GetSendsLeft() != 4 {
			t.Errorf("status, %s: response %v", tc.reason, st)
		}
	}
}

func TestStatusIsNotRetriedWithoutRetryInfo(t *testing.T) {
	for _, tc := range []struct {
		code   codes.Code
		reason string
	}{{codes.Unavailable, "COGNITO_UNREACHABLE"}, {codes.ResourceExhausted, "OVERLOADED"}, {codes.Unauthenticated, "TOKEN_EXPIRED"}} {
		f := &fake{errs: []error{rich(t, tc.code, "no", info(tc.reason, "cognito-verify", nil))}}
		_, err := client(t, serve(t, f)).GetVerificationStatus(context.Background(), "t")
		if err == nil || asError(t, err).ReasonName != tc.reason || len(f.seen()) != 1 {
			t.Errorf("%s without RetryInfo: %v after %d attempts, want it after 1", tc.reason, err, len(f.seen()))
		}
	}
}

func TestStatusRetriesAreCapped(t *testing.T) {
	f := &fake{always: rich(t, codes.Unavailable, "later", info("COGNITO_UNREACHABLE", "cognito-verify", nil), retry(5*time.Millisecond))}
	if _, err := client(t, serve(t, f)).GetVerificationStatus(context.Background(), "t"); err == nil || len(f.seen()) != verifyclient.DefaultMaxAttempts {
		t.Errorf("%v after %d attempts, want %d", err, len(f.seen()), verifyclient.DefaultMaxAttempts)
	}
	f = &fake{errs: []error{rich(t, codes.Unavailable, "later", info("COGNITO_UNREACHABLE", "cognito-verify", nil), retry(60*time.Second))}}
	if _, err := client(t, serve(t, f)).GetVerificationStatus(context.Background(), "t"); err == nil || len(f.seen()) != 1 {
		t.Errorf("a wait past the deadline: %v after %d attempts, want an error after 1", err, len(f.seen()))
	}
}

func TestAttemptsAreCapped(t *testing.T) {
	f := &fake{always: overloaded(t, 5*time.Millisecond)}
	c := client(t, serve(t, f))
	_, err := c.VerifyUserAttribute(context.Background(), "t", "email", "1")
	if asError(t, err).ReasonName != "OVERLOADED" || len(f.seen()) != verifyclient.DefaultMaxAttempts {
		t.Errorf("%v after %d attempts, want %d", err, len(f.seen()), verifyclient.DefaultMaxAttempts)
	}
	f = &fake{always: overloaded(t, 5*time.Millisecond)}
	c = client(t, serve(t, f), verifyclient.WithMaxAttempts(1))
	if _, err := c.VerifyUserAttribute(context.Background(), "t", "email", "1"); err == nil || len(f.seen()) != 1 {
		t.Errorf("WithMaxAttempts(1): %v after %d attempts", err, len(f.seen()))
	}
}

func TestNoRetryPastTheDeadline(t *testing.T) {
	f := &fake{errs: []error{rich(t, codes.Unavailable, "keys", info("SIGNING_KEYS_UNAVAILABLE", "cognito-verify", nil), retry(60*time.Second))}}
	start := time.Now()
	_, err := client(t, serve(t, f)).VerifyUserAttribute(context.Background(), "t", "email", "1")
	if e := asError(t, err); e.ReasonName != "SIGNING_KEYS_UNAVAILABLE" || e.RetryAfter != 60*time.Second {
		t.Errorf("%v", err)
	}
	if n, took := len(f.seen()), time.Since(start); n != 1 || took > 5*time.Second {
		t.Errorf("%d attempts in %v: waited for a retry past the 10 s deadline", n, took)
	}
}

func TestRetriesStayWithinTheDeadline(t *testing.T) {
	// Each attempt advises 150 ms; the deadline is 400 ms away: attempts at
	// about 0, 150 and 300 ms, then the next wait would reach the deadline.
	f := &fake{always: overloaded(t, 150*time.Millisecond)}
	c := client(t, serve(t, f), verifyclient.WithMaxAttempts(100))
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_, err := c.GetUserAttributeVerificationCode(ctx, "t", "email", verifyclient.WithRequestID("r1"))
	if asError(t, err).ReasonName != "OVERLOADED" {
		t.Errorf("the last status is not returned: %v", err)
	}
	if time.Now().After(deadline) {
		t.Errorf("returned %v after the deadline", time.Since(deadline))
	}
	calls := f.seen()
	if len(calls) < 2 || len(calls) > 3 {
		t.Errorf("%d attempts, want 2 or 3 (3 unless the machine is slow)", len(calls))
	}
	for i, c := range calls {
		// The server sees the caller's deadline (grpc-timeout), never a later one.
		if !c.hasLeft || c.at.Add(c.left).After(deadline.Add(20*time.Millisecond)) {
			t.Errorf("attempt %d: server deadline %v after the call's", i+1, c.at.Add(c.left).Sub(deadline))
		}
		if i > 0 && c.at.Sub(calls[i-1].at) < 150*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous, before the advised 150ms", i+1, c.at.Sub(calls[i-1].at))
		}
	}
}

func TestDefaultDeadline(t *testing.T) {
	f := &fake{}
	c := client(t, serve(t, f), verifyclient.WithTimeout(3*time.Second))
	if _, err := c.VerifyUserAttribute(context.Background(), "t", "email", "1"); err != nil {
		t.Fatal(err)
	}
	// The context's own deadline wins over the client's.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if _, err := c.VerifyUserAttribute(ctx, "t", "email", "1"); err != nil {
		t.Fatal(err)
	}
	calls := f.seen()
	if !calls[0].hasLeft || calls[0].left > 3*time.Second || calls[0].left < 2*time.Second {
		t.Errorf("no context deadline: the server saw %v left, want about 3 s", calls[0].left)
	}
	if !calls[1].hasLeft || calls[1].left > 8*time.Second || calls[1].left < 7*time.Second {
		t.Errorf("a context deadline of 8 s: the server saw %v left", calls[1].left)
	}
	if verifyclient.DefaultTimeout != 10*time.Second {
		t.Errorf("DefaultTimeout %v", verifyclient.DefaultTimeout)
	}
}

func TestDeadlineAlreadyPassed(t *testing.T) {
	f := &fake{}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := client(t, serve(t, f)).VerifyUserAttribute(ctx, "t", "email", "1")
	if e := asError(t, err); e.Code != codes.DeadlineExceeded || len(f.seen()) != 0 {
		t.Errorf("%v after %d attempts", err, len(f.seen()))
	}
}

func TestCancelDuringTheWait(t *testing.T) {
	f := &fake{always: overloaded(t, 5*time.Second)}
	c := client(t, serve(t, f))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.VerifyUserAttribute(ctx, "t", "email", "1")
	if e := asError(t, err); e.Code != codes.Canceled || time.Since(start) > 3*time.Second || len(f.seen()) != 1 {
		t.Errorf("%v after %v and %d attempts", err, time.Since(start), len(f.seen()))
	}
}

func TestSecretsAreNeverPrinted(t *testing.T) {
	const token, code = "eyJ.secret-token.sig", "secret-code-987654"
	f := &fake{errs: []error{
		rich(t, codes.InvalidArgument, "wrong code", info("CODE_MISMATCH", "cognito-idp.amazonaws.com", nil),
			&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "code", Description: "does not match"}}}),
		overloaded(t, time.Minute),
		rich(t, codes.Unauthenticated, "expired", info("TOKEN_EXPIRED", "cognito-verify", nil)),
	}}
	c := client(t, serve(t, f))
	_, verr := c.VerifyUserAttribute(context.Background(), token, "email", code)
	_, serr := c.GetUserAttributeVerificationCode(context.Background(), token, "email", verifyclient.WithRequestID("r1"))
	_, sterr := c.GetVerificationStatus(context.Background(), token)
	calls := f.seen()
	if len(calls) != 3 || calls[0].token != token || calls[0].code != code || calls[1].token != token || calls[2].token != token {
		t.Fatalf("the server did not get the token and code: %+v", calls)
	}
	for _, err := range []error{verr, serr, sterr} {
		for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			if s := fmt.Sprintf(format, err); strings.Contains(s, "secret") {
				t.Errorf("%s shows a secret: %s", format, s)
			}
		}
	}
	for _, format := range []string{"%v", "%+v", "%#v"} {
		if s := fmt.Sprintf(format, c); strings.Contains(s, "secret") {
			t.Errorf("the client's %s shows a secret: %s", format, s)
		}
	}
}

// tlsFiles writes a CA, a server certificate for 127.0.0.1 and the name
// verify.test, and a client certificate (all PEM) into a temporary folder.
func tlsFiles(t *testing.T) (dir string, server tls.Certificate, pool *x509.CertPool) {
	t.Helper()
	dir = t.TempDir()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), DNSNames: []string{name},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	serverDER, serverKey := leaf(2, "verify.test", x509.ExtKeyUsageServerAuth)
	server = tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}
	clientDER, clientKey := leaf(3, "caller.test", x509.ExtKeyUsageClientAuth)
	write("client.pem", "CERTIFICATE", clientDER)
	keyDER, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	write("client-key.pem", "PRIVATE KEY", keyDER)
	return dir, server, pool
}

func TestDialMTLS(t *testing.T) {
	dir, server, pool := tlsFiles(t)
	f := &fake{}
	addr := serve(t, f, grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{server}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})))
	_, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct{ addr, serverName string }{{addr, ""}, {"localhost:" + port, "verify.test"}} {
		conn, err := verifyclient.Dial(tc.addr, verifyclient.Options{
			CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "client.pem"),
			KeyFile: filepath.Join(dir, "client-key.pem"), ServerName: tc.serverName,
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = verifyclient.New(conn).VerifyUserAttribute(context.Background(), "t", "email", "1")
		conn.Close()
		if err != nil {
			t.Errorf("mTLS to %s (server name %q): %v", tc.addr, tc.serverName, err)
		}
	}
	// Without the client certificate the server refuses the handshake.
	conn, err := verifyclient.Dial(addr, verifyclient.Options{CAFile: filepath.Join(dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = verifyclient.New(conn, verifyclient.WithTimeout(2*time.Second)).VerifyUserAttribute(context.Background(), "t", "email", "1")
	if e := asError(t, err); e.Code != codes.Unavailable {
		t.Errorf("TLS without a client certificate: %v", err)
	}
	if n := len(f.seen()); n != 2 {
		t.Errorf("%d calls reached the server, want 2", n)
	}
}

func TestDialRefusesBadOptions(t *testing.T) {
	dir, _, _ := tlsFiles(t)
	for name, opts := range map[string]verifyclient.Options{
		"plaintext with a CA":    {Plaintext: true, CAFile: filepath.Join(dir, "ca.pem")},
		"a certificate, no key":  {CertFile: filepath.Join(dir, "client.pem")},
		"a key, no certificate":  {KeyFile: filepath.Join(dir, "client-key.pem")},
		"a CA file that is none": {CAFile: filepath.Join(dir, "client-key.pem")},
	} {
		if _, err := verifyclient.Dial("127.0.0.1:1", opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, err := verifyclient.Dial("127.0.0.1:1", verifyclient.Options{CAFile: filepath.Join(dir, "missing.pem")})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing CA file: %v", err)
	}
}

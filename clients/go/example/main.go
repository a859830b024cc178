// Command example walks through what an agent runtime does with Keyleash, printing each step:
// mint a key (a root key for a tenant with an admin token, or a child key with a parent key's
// secret), authorize one call with an estimated cost, and charge what the call actually cost
// against the reservation the vault placed.
//
// Build offline (GOPATH mode, Debian's Go packages): clients/go/build.sh OUT_DIR
//
//	example -vault localhost:50051 -metering localhost:50052 -token "$ADMIN_TOKEN" -tenant acme
//	example -token vk_parent_secret            # mints a child of that key
//
// Every flag has an environment default: KEYLEASH_VAULT_TARGET, KEYLEASH_METERING_TARGET,
// KEYLEASH_TOKEN, KEYLEASH_TLS_CA.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	meteringv1 "github.com/keyleash/keyleash/clients/go/gen/keyleash/metering/v1"
	typev1 "github.com/keyleash/keyleash/clients/go/gen/keyleash/type/v1"
	vaultv1 "github.com/keyleash/keyleash/clients/go/gen/keyleash/vault/v1"
)

type config struct {
	vault, metering, token, tlsCA string
	tenant, scope, currency       string
	runID, requestID              string
	estimate, actual              int64
	timeout                       time.Duration
}

func env(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func parseFlags() config {
	var c config
	flag.StringVar(&c.vault, "vault", env("KEYLEASH_VAULT_TARGET", "localhost:50051"), "vault address")
	flag.StringVar(&c.metering, "metering", env("KEYLEASH_METERING_TARGET", "localhost:50052"), "metering address")
	flag.StringVar(&c.token, "token", env("KEYLEASH_TOKEN", ""), "admin token, or a parent key secret (vk_...)")
	flag.StringVar(&c.tlsCA, "tls-ca", env("KEYLEASH_TLS_CA", ""), "PEM CA file; set to use TLS")
	flag.StringVar(&c.tenant, "tenant", "", "tenant of the root key (admin token only)")
	flag.StringVar(&c.scope, "scope", "api.call", "scope of the key and of the call")
	flag.StringVar(&c.currency, "currency", "USD", "currency of the costs")
	flag.Int64Var(&c.estimate, "estimate-micros", 2_000_000, "estimated cost of the call, in micros")
	flag.Int64Var(&c.actual, "actual-micros", 1_500_000, "actual cost of the call, in micros")
	flag.StringVar(&c.runID, "run-id", "", "agent run id (default: generated)")
	flag.StringVar(&c.requestID, "request-id", "", "idempotency key of the call (default: generated)")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Second, "deadline of each RPC")
	flag.Parse()
	stamp := time.Now().UnixNano()
	if c.runID == "" {
		c.runID = fmt.Sprintf("run-go-%d", stamp)
	}
	if c.requestID == "" {
		c.requestID = fmt.Sprintf("go-example-%d", stamp)
	}
	if c.tenant == "" {
		c.tenant = fmt.Sprintf("go-example-%d", stamp)
	}
	return c
}

func dial(target, tlsCA string) (*grpc.ClientConn, error) {
	transport := grpc.WithInsecure()
	if tlsCA != "" {
		creds, err := credentials.NewClientTLSFromFile(tlsCA, "")
		if err != nil {
			return nil, err
		}
		transport = grpc.WithTransportCredentials(creds)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return grpc.DialContext(ctx, target, transport, grpc.WithBlock())
}

// call returns a context carrying the bearer token and the agent run id, with a deadline.
func call(c config, token string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token, "x-agent-run-id", c.runID)
	return ctx, cancel
}

// describe renders a gRPC error with its google.rpc.ErrorInfo / BadRequest details.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	text := fmt.Sprintf("%s: %s", st.Code(), st.Message())
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			text += fmt.Sprintf(" [reason=%s domain=%s metadata=%v]", d.Reason, d.Domain, d.Metadata)
		case *errdetails.BadRequest:
			for _, v := range d.FieldViolations {
				text += fmt.Sprintf(" [field %s: %s]", v.Field, v.Description)
			}
		case *errdetails.RetryInfo:
			text += fmt.Sprintf(" [retry after %s]", d.RetryDelay.AsDuration())
		}
	}
	return text
}

func money(currency string, micros int64) *typev1.Money {
	return &typev1.Money{CurrencyCode: currency, Micros: micros}
}

func format(m *typev1.Money) string {
	sign, micros := "", m.GetMicros()
	if micros < 0 {
		sign, micros = "-", -micros
	}
	return fmt.Sprintf("%s%d.%06d %s", sign, micros/1_000_000, micros%1_000_000, m.GetCurrencyCode())
}

func mint(c config, vault vaultv1.VaultServiceClient) (*vaultv1.MintKeyResponse, error) {
	request := &vaultv1.MintKeyRequest{
		AgentId:   "go-example-agent",
		Label:     c.runID,
		Scopes:    []string{c.scope},
		Ttl:       durationpb.New(time.Hour),
		RequestId: c.requestID + ":mint",
		Policy: &vaultv1.Policy{
			RateLimits: []*vaultv1.RateLimit{{Limit: 10, Window: durationpb.New(time.Minute)}},
			SpendCaps: []*vaultv1.SpendCap{{
				Limit:  money(c.currency, 5_000_000),
				Window: vaultv1.SpendCap_WINDOW_CALENDAR_DAY,
			}},
		},
	}
	kind := "child key of the token's key"
	if !strings.HasPrefix(c.token, "vk_") {
		request.TenantId = c.tenant
		kind = "root key in tenant " + c.tenant
	}
	ctx, cancel := call(c, c.token)
	defer cancel()
	minted, err := vault.MintKey(ctx, request)
	if err == nil {
		fmt.Printf("1. mint: %s %s (secret %s..., daily cap %s, 10 calls/min)\n",
			kind, minted.GetKey().GetName(), minted.GetSecret()[:7], format(money(c.currency, 5_000_000)))
	}
	return minted, err
}

func run(c config) error {
	if c.token == "" {
		return fmt.Errorf("no credential: pass -token or set KEYLEASH_TOKEN")
	}
	vaultConn, err := dial(c.vault, c.tlsCA)
	if err != nil {
		return fmt.Errorf("dial vault %s: %w", c.vault, err)
	}
	defer vaultConn.Close()
	meteringConn, err := dial(c.metering, c.tlsCA)
	if err != nil {
		return fmt.Errorf("dial metering %s: %w", c.metering, err)
	}
	defer meteringConn.Close()
	vault := vaultv1.NewVaultServiceClient(vaultConn)
	metering := meteringv1.NewMeteringServiceClient(meteringConn)

	minted, err := mint(c, vault)
	if err != nil {
		return fmt.Errorf("mint: %s", describe(err))
	}
	secret := minted.GetSecret()

	// The agent now holds only its own secret: it authorizes and charges with it.
	ctx, cancel := call(c, secret)
	defer cancel()
	decision, err := vault.Authorize(ctx, &vaultv1.AuthorizeRequest{
		Key:           secret,
		Scope:         c.scope,
		Vendor:        "example-vendor",
		Method:        "POST",
		Path:          "/v1/things",
		EstimatedCost: money(c.currency, c.estimate),
		AgentRunId:    c.runID,
		RequestId:     c.requestID + ":authorize",
	})
	if err != nil {
		return fmt.Errorf("authorize: %s", describe(err))
	}
	allowed := decision.GetDecision() == vaultv1.Decision_DECISION_ALLOW
	verdict := "DENY " + decision.GetReason().String()
	if allowed {
		verdict = "ALLOW"
	}
	fmt.Printf("2. authorize: %s (estimate %s, reservation %s, run %s)\n",
		verdict, format(money(c.currency, c.estimate)), decision.GetReservationId(), c.runID)
	if !allowed {
		return fmt.Errorf("the call was denied: %s %s", decision.GetReason(), decision.GetMessage())
	}

	ctx, cancel = call(c, secret)
	defer cancel()
	charged, err := metering.Charge(ctx, &meteringv1.ChargeRequest{
		RequestId:     c.requestID + ":charge",
		KeyId:         decision.GetKeyId(),
		ReservationId: decision.GetReservationId(),
		Amount:        money(c.currency, c.actual),
		Vendor:        "example-vendor",
		Endpoint:      "POST /v1/things",
		AgentRunId:    c.runID,
		CostSource:    "vendor_response",
	})
	if err != nil {
		return fmt.Errorf("charge: %s", describe(err))
	}
	event := charged.GetEvent()
	fmt.Printf("3. charge: %s recorded as event %s (kind %s, run %s, duplicate %v)\n",
		format(event.GetAmount()), event.GetEventId(), event.GetKind(), event.GetAgentRunId(),
		charged.GetDuplicate())
	if tenant := charged.GetTenant(); tenant != nil && tenant.GetSpendToday() != nil {
		fmt.Printf("4. tenant %s: spent today %s, throttled %v\n",
			tenant.GetTenantId(), format(tenant.GetSpendToday()), tenant.GetThrottled())
	}
	return nil
}

func main() {
	if err := run(parseFlags()); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

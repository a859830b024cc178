-- A tenant's own LLM prices, used instead of the shipped price table for that tenant's usage.
CREATE TABLE tenant_model_prices (
    tenant_id                        text NOT NULL,
    model                            text NOT NULL,
    input_per_million_micros         bigint NOT NULL CHECK (input_per_million_micros >= 0),
    output_per_million_micros        bigint NOT NULL CHECK (output_per_million_micros >= 0),
    cached_input_per_million_micros  bigint NOT NULL CHECK (cached_input_per_million_micros >= 0),
    update_time                      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, model)
);

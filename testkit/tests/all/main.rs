//! The kit's tests of the example plugins, one module per plugin: each
//! loads the real compiled component into the embedded host, with fixture
//! data, scripted department answers and a clock the test moves; and
//! `contract_0_2`, what a plugin built with the SDK sees of the contract,
//! through the `follows-a-script` fixture.
//! One test binary (wasmtime's layout) links wasmtime once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

mod business_startup;
mod contract_0_2;
mod ebike_charging;
mod medical_insurance_transfer;
mod newborn;
mod residence_certificate;

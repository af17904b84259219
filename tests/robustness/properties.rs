//! The fuzz targets' inputs, drawn by proptest: arbitrary bytes decoded
//! into a pipeline case (arbitrary parameters, arbitrary f32 bit patterns,
//! a sampler) or a generator case (a model returning arbitrary rows and
//! errors). Neither may panic or break a guarantee.

use proptest::prelude::*;

use crate::harness;

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn a_pipeline_on_arbitrary_parameters_and_bits_never_panics(
        data in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        harness::pipeline(&data);
    }

    #[test]
    fn the_generator_on_an_arbitrary_model_never_panics(
        data in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        harness::generator(&data);
    }
}

//! Randomness for ids and jitter in the browser, shared by both drivers.

use wasm_bindgen::prelude::*;

use crate::tracker::Entropy;

#[wasm_bindgen]
extern "C" {
    /// `crypto.getRandomValues`: ids must not collide across millions of browsers.
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]);
}

/// `crypto.getRandomValues` through a small pool.
#[derive(Debug)]
pub struct BrowserEntropy {
    pool: [u8; 64],
    used: usize,
}

impl BrowserEntropy {
    pub fn new() -> Self {
        Self {
            pool: [0; 64],
            used: 64,
        }
    }
}

impl Entropy for BrowserEntropy {
    fn next_u32(&mut self) -> u32 {
        if self.used + 4 > self.pool.len() {
            get_random_values(&mut self.pool);
            self.used = 0;
        }
        let mut word = [0u8; 4];
        for (i, w) in word.iter_mut().enumerate() {
            *w = self.pool.get(self.used + i).copied().unwrap_or(0);
        }
        self.used += 4;
        u32::from_le_bytes(word)
    }
}

// The shop's catalog: a handful of products in three categories. Prices are
// whole euros so cart sums are exact in every store.
export interface Product {
  id: string;
  name: string;
  category: string;
  price: number;
  blurb: string;
  hue: number;
}

export const categories = [
  { slug: 'cameras', name: 'Cameras' },
  { slug: 'lenses', name: 'Lenses' },
  { slug: 'tripods', name: 'Tripods' },
];

export const products: Product[] = [
  { id: 'prod-1', name: 'Field camera', category: 'cameras', price: 899, blurb: 'Weather-sealed, 24 MP, two card slots.', hue: 200 },
  { id: 'prod-2', name: 'Pocket camera', category: 'cameras', price: 349, blurb: 'A one-inch sensor that fits a jacket pocket.', hue: 215 },
  { id: 'prod-3', name: 'Instant camera', category: 'cameras', price: 129, blurb: 'Prints the moment, there and then.', hue: 230 },
  { id: 'prod-4', name: '50 mm prime', category: 'lenses', price: 249, blurb: 'f/1.8, light, sharp from corner to corner.', hue: 30 },
  { id: 'prod-5', name: '24-70 mm zoom', category: 'lenses', price: 1199, blurb: 'The lens that stays on the camera.', hue: 15 },
  { id: 'prod-6', name: 'Macro 100 mm', category: 'lenses', price: 649, blurb: 'Life size at 30 cm.', hue: 45 },
  { id: 'prod-7', name: 'Travel tripod', category: 'tripods', price: 189, blurb: 'Folds to 40 cm, holds 8 kg.', hue: 130 },
  { id: 'prod-8', name: 'Studio tripod', category: 'tripods', price: 329, blurb: 'Geared head, rock steady.', hue: 150 },
];

export const productById = (id: string) => products.find((p) => p.id === id);

export function searchProducts(query: string) {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  return products.filter((p) => `${p.name} ${p.category} ${p.blurb}`.toLowerCase().includes(q));
}
